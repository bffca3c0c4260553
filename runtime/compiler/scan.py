"""A small JavaScript/TypeScript tokenizer, just enough to see a script's top-level shape.

Shape detection and import hoisting must ignore comments, strings, template literals and regular
expressions, and know the brace depth; a full parser would be overkill since esbuild does the
real parse afterwards. The regex-versus-division choice is the usual heuristic on the previous
token, so a pathological script can fool it; the consequence is a wrong shape, which esbuild then
reports as a syntax error rather than miscompiling.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

_IDENT = re.compile(r"[A-Za-z_$\u0080-\uffff][\w$\u0080-\uffff]*")
_NUMBER = re.compile(r"\.?\d[\w.]*")
_PUNCT = re.compile(r"\?\?=|\?\.|\.\.\.|=>|[=!]==?|[<>]=?|&&=?|\|\|=?|\?\?|[-+*%&|^/]=?|[{}()\[\];,.:?~@#]")
_REGEX_AFTER_WORDS = frozenset(
    {"return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case", "do",
     "else", "yield", "await"}
)


@dataclass(frozen=True, slots=True)
class Token:
    """One token: ``kind`` is id, str, template, regex, num or punct; ``depth`` counts open braces."""

    kind: str
    start: int
    end: int
    depth: int
    newline_before: bool


def _skip_string(src: str, i: int) -> int:
    quote, n = src[i], len(src)
    i += 1
    while i < n:
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c == quote or c == "\n":
            return i + 1
        i += 1
    return n


def _skip_template(src: str, i: int) -> tuple[int, bool]:
    """Scan template text from ``i``; return (end, True) at a ``${`` or (end, False) at the close."""
    n = len(src)
    while i < n:
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c == "`":
            return i + 1, False
        if c == "$" and src.startswith("${", i):
            return i + 2, True
        i += 1
    return n, False


def _skip_regex(src: str, i: int) -> int:
    n, in_class = len(src), False
    i += 1
    while i < n:
        c = src[i]
        if c == "\\":
            i += 2
            continue
        if c == "\n":
            return i
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        elif c == "/" and not in_class:
            i += 1
            while i < n and (src[i].isalnum() or src[i] in "_$"):
                i += 1
            return i
        i += 1
    return n


def _regex_allowed(prev: Token | None, src: str) -> bool:
    if prev is None:
        return True
    if prev.kind in ("str", "num", "regex", "template"):
        return False
    text = src[prev.start:prev.end]
    if prev.kind == "id":
        return text in _REGEX_AFTER_WORDS
    return text not in (")", "]")


def tokenize(src: str) -> list[Token]:
    """Tokens of ``src`` outside comments; strings and templates are single opaque tokens."""
    out: list[Token] = []
    stack: list[str] = []
    i, n, newline = 0, len(src), False
    if src.startswith("#!"):
        i = src.find("\n")
        i = n if i < 0 else i
    while i < n:
        c = src[i]
        if c in " \t\r\ufeff\u00a0":
            i += 1
            continue
        if c == "\n":
            newline, i = True, i + 1
            continue
        if src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
            continue
        if src.startswith("/*", i):
            j = src.find("*/", i + 2)
            newline = newline or "\n" in src[i:j]
            i = n if j < 0 else j + 2
            continue
        prev = out[-1] if out else None
        start, depth = i, len(stack)
        if c in "\"'":
            kind, i = "str", _skip_string(src, i)
        elif c == "`":
            kind = "template"
            i, opened = _skip_template(src, i + 1)
            if opened:
                stack.append("${")
        elif c == "}" and stack and stack[-1] == "${":
            stack.pop()
            kind, depth = "template", len(stack)
            i, opened = _skip_template(src, i + 1)
            if opened:
                stack.append("${")
        elif c == "/" and _regex_allowed(prev, src):
            kind, i = "regex", _skip_regex(src, i)
        elif m := _IDENT.match(src, i):
            kind, i = "id", m.end()
        elif m := _NUMBER.match(src, i):
            kind, i = "num", m.end()
        else:
            m = _PUNCT.match(src, i)
            kind, i = "punct", (m.end() if m else i + 1)
            if c == "{":
                stack.append("{")
            elif c == "}" and stack:
                stack.pop()
                depth = len(stack)
        out.append(Token(kind, start, i, depth, newline))
        newline = False
    return out


@dataclass(frozen=True, slots=True)
class Import:
    """One module a script loads: its specifier as written and where (1-based)."""

    name: str
    line: int
    column: int


def imports(code: str) -> list[Import]:
    """Every module ``code`` loads with ``require('x')``, ``import … from 'x'``, ``import 'x'``
    or ``import('x')``, in order; type-only imports load nothing and are left out."""
    toks = tokenize(code)
    text = [code[t.start:t.end] for t in toks]
    lines = [0] + [k + 1 for k, c in enumerate(code) if c == "\n"]
    found: list[Import] = []
    for i, tok in enumerate(toks):
        if tok.kind != "str":
            continue
        before = text[i - 1] if i > 0 else ""
        call = before == "(" and i > 1 and text[i - 2] in ("require", "import") \
            and (i < 3 or text[i - 3] not in (".", "?.")) and text[i + 1:i + 2] == [")"]
        declared = (before == "from" or (before == "import" and tok.depth == 0)) \
            and not _type_only(text, i)
        if call or declared:
            line = bisect_right(lines, tok.start)
            found.append(Import(text[i][1:-1], line, tok.start - lines[line - 1] + 1))
    return found


def _type_only(text: list[str], at: int) -> bool:
    """`import type … from 'x'` and `export type … from 'x'` load nothing."""
    j = at - 1
    while j >= 0 and text[j] not in ("import", "export", ";"):
        j -= 1
    return j >= 0 and text[j] in ("import", "export") and text[j + 1:j + 2] == ["type"]
