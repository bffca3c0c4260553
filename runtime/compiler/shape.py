"""The three shapes a script comes in, and the rewrite that gives them all one entry point.

Canonical scripts are top-level code that ``return``s its answer and may use top-level ``await``
and ``import``. esbuild rejects a top-level ``return`` in a module and top-level ``await`` in
CommonJS output, so such a script is rewritten before esbuild: its imports are hoisted onto one
prefix line that also opens ``export default async function (req, res, metadata, shared) {``
(``async`` only if the script awaits; ``module.exports =`` instead of ``export default`` when it
imports nothing), and every other character keeps its original line and column one line lower.
That keeps error positions recoverable with :meth:`Origin.original`.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from dataclasses import dataclass, field

from .errors import CompileError
from .scan import Token, tokenize

HANDLER_OPEN = "{}{}function (req, res, metadata, shared) {{"
"""The handler a canonical script becomes: ``async`` only when its code awaits (an async call
costs a promise and its jobs on every request); the prelude settles a plain return one
microtask later, where an async function's would land, so both behave alike. It is exported
as CommonJS unless the script imports something: an ES module costs esbuild's interop helpers,
which run on every load, and that is most of a fresh instance's load."""


class Shape(str, enum.Enum):
    """How a script hands over its handler."""

    SCRIPT = "script"
    """Top-level code that returns its answer (canonical)."""
    COMMONJS = "commonjs"
    """``module.exports = handler`` or ``exports.default = handler``."""
    ESM = "esm"
    """``export default handler`` or ``export { handler as default }``."""


@dataclass(frozen=True)
class Origin:
    """Maps positions in the text given to esbuild back to the original file."""

    wrapped: bool = False
    """True for a canonical script: the original starts one line down."""
    prefix: tuple[tuple[int, int, int], ...] = ()
    """Segments ``(prefix_col, line, col)`` of the hoisted imports on the prefix line; the last,
    with line 0, marks where the handler wrapper starts (it maps to the top of the file)."""

    def original(self, line: int, col: int) -> tuple[int, int]:
        """Map a 1-based line and 0-based column to the original source."""
        if not self.wrapped:
            return line, col
        if line > 1:
            return line - 1, col
        at = bisect_right([seg[0] for seg in self.prefix], col) - 1
        if at < 0 or self.prefix[at][1] == 0:
            return 1, 0
        start, orig_line, orig_col = self.prefix[at]
        return orig_line, orig_col + (col - start)


@dataclass(frozen=True)
class Prepared:
    """The text handed to esbuild, and the way back to the original positions."""

    shape: Shape
    text: str
    origin: Origin = field(default_factory=Origin)


def _text(src: str, tok: Token) -> str:
    return src[tok.start:tok.end]


def detect_shape(src: str, tokens: list[Token] | None = None) -> Shape:
    """Tell a script's shape from its tokens, ignoring comments and strings."""
    toks = tokenize(src) if tokens is None else tokens
    words = [_text(src, t) if t.kind in ("id", "punct") else "" for t in toks]
    for i, word in enumerate(words):
        if word == "export" and toks[i].depth == 0 and i + 1 < len(words):
            if words[i + 1] == "default":
                return Shape.ESM
            if words[i + 1] == "{":
                j = i + 2
                while j < len(words) and words[j] != "}":
                    if words[j] == "default" and words[j - 1] == "as":
                        return Shape.ESM
                    j += 1
    for i, word in enumerate(words):
        after_dot = i > 0 and words[i - 1] in (".", "?.")
        if word == "module" and not after_dot and words[i + 1:i + 3] == [".", "exports"] \
                and words[i + 3:i + 4] in (["="], ["."]):
            return Shape.COMMONJS
        if word == "exports" and not after_dot and words[i + 1:i + 4] == [".", "default", "="]:
            return Shape.COMMONJS
    return Shape.SCRIPT


def _import_end(src: str, toks: list[Token], i: int) -> int | None:
    """Index of the last token of the import declaration starting at ``toks[i]``."""
    j, n = i + 1, len(toks)
    while j < n and toks[j].kind != "str":
        if _text(src, toks[j]) == ";" or (j > i + 1 and toks[j].newline_before
                                          and _text(src, toks[j - 1]) not in ("{", ",", "from")
                                          and _text(src, toks[j]) not in ("}", ",", "from")):
            return None
        j += 1
    if j >= n:
        return None
    if j > 0 and _text(src, toks[j - 1]) == "(" and j + 1 < n and _text(src, toks[j + 1]) == ")":
        j += 1
    if j + 2 < n and _text(src, toks[j + 1]) in ("with", "assert") and _text(src, toks[j + 2]) == "{":
        j += 2
        while j < n and _text(src, toks[j]) != "}":
            j += 1
    if j + 1 < n and _text(src, toks[j + 1]) == ";":
        j += 1
    return j if j < n else None


_DECLARATION_WORDS = frozenset(
    {"const", "let", "var", "function", "async", "class", "interface", "type", "enum", "abstract",
     "declare"}
)


def _line_col(src: str, offset: int, line_starts: list[int]) -> tuple[int, int]:
    line = bisect_right(line_starts, offset)
    return line, offset - line_starts[line - 1]


def prepare(src: str) -> Prepared:
    """Detect the shape and, for canonical scripts, wrap the body in the handler function."""
    toks = tokenize(src)
    shape = detect_shape(src, toks)
    if shape is not Shape.SCRIPT:
        return Prepared(shape, src)
    line_starts = [0] + [k + 1 for k, c in enumerate(src) if c == "\n"]
    body = list(src)
    hoisted: list[str] = []
    segments: list[tuple[int, int, int]] = []
    width = 0
    i = 0
    while i < len(toks):
        tok = toks[i]
        word = _text(src, tok) if tok.kind == "id" else ""
        nxt = _text(src, toks[i + 1]) if i + 1 < len(toks) else ""
        if tok.depth != 0 or not word:
            i += 1
            continue
        if word == "import" and nxt not in ("(", "."):
            end = _import_end(src, toks, i)
            if end is not None:
                start_off, end_off = tok.start, toks[end].end
                for piece_start, piece in _split_lines(_code_only(src, toks[i:end + 1])):
                    segments.append((width, *_line_col(src, piece_start, line_starts)))
                    hoisted.append(piece)
                    width += len(piece) + 1
                for k in range(start_off, end_off):
                    if body[k] != "\n":
                        body[k] = " "
                i = end + 1
                continue
        if word in ("namespace", "module") and tok.kind == "id" and i + 2 < len(toks) \
                and toks[i + 1].kind in ("id", "str") and not toks[i + 1].newline_before \
                and _text(src, toks[i + 2]) in ("{", "."):
            line, col = _line_col(src, tok.start, line_starts)
            raise CompileError(
                f"a TypeScript {word} cannot live in a top-level script; move it to a module-"
                "shape file (one with export default) or replace it with a plain object",
                None, line, col + 1,
            )
        if word == "export" and nxt in _DECLARATION_WORDS:
            for k in range(tok.start, tok.end):
                body[k] = " "
        i += 1
    segments.append((width, 0, 0))
    awaits = any(t.kind == "id" and _text(src, t) == "await" for t in toks)
    export = "export default " if hoisted else "module.exports = "
    opening = HANDLER_OPEN.format(export, "async " if awaits else "")
    prefix = " ".join(hoisted) + (" " if hoisted else "") + opening
    text = prefix + "\n" + "".join(body) + "\n}\n"
    return Prepared(shape, text, Origin(True, tuple(segments)))


def _code_only(src: str, toks: list[Token]) -> tuple[int, str]:
    """The span covered by ``toks`` with comments blanked, so it can be joined onto one line."""
    start = toks[0].start
    chars = [" " if c != "\n" else c for c in src[start:toks[-1].end]]
    for tok in toks:
        chars[tok.start - start:tok.end - start] = src[tok.start:tok.end]
    return start, "".join(chars)


def _split_lines(span: tuple[int, str]) -> list[tuple[int, str]]:
    at, text = span
    pieces = []
    for part in text.split("\n"):
        pieces.append((at, part))
        at += len(part) + 1
    return pieces
