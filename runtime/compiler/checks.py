"""What the management API's validation reports, each check made by the part that runs scripts.

- syntax: the real compile (shape rewrite, esbuild, QuickJS bytecode), as the catalog does it.
- typescript: the same compile with esbuild's TypeScript loader (it parses and transpiles), then
  the pinned TypeScript's checker against wexec.d.ts (tsc.py). Where node or npm is missing the
  type check is skipped and a warning says why and how to fix it.
- dependencies: every module a script loads (`require`, `import`, `import()`), each either one
  of the prelude's built-in modules or one wexec cannot give it: scripts have no npm.
- magic comments: the parser the catalog uses, every problem with its line.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

from .compiler import Compiler
from .errors import CompileError
from .magic import MagicCommentError, MagicComments, parse_magic_comments
from .scan import Token, tokenize
from .tsc import VERSION, Checker, Unavailable

BUILTIN_MODULES = ("buffer", "crypto", "process", "timers", "url", "util")
"""What `require` gives a script (guest/prelude/lib/node.js's `builtins`; a test keeps these in
step), also under `node:`."""

TYPES_NOT_CHECKED = ("types were not checked, only parsed and transpiled: {why}; then "
                     "TypeScript {version} checks the script against wexec.d.ts")


@dataclass(frozen=True)
class Problem:
    message: str
    line: int | None = None
    column: int | None = None
    code: str | None = None


@dataclass
class Outcome:
    """One check's answer: no errors means it passed."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class Dependency:
    name: str
    line: int
    column: int
    builtin: bool


def syntax(compiler: Compiler, code: str, path: str) -> Outcome:
    """The script compiled as the server compiles `path` (its extension picks the loader)."""
    try:
        compiler.check(code, path)
    except CompileError as exc:
        return Outcome([Problem(exc.message, exc.line, exc.col)])
    return Outcome()


def typescript(compiler: Compiler, checker: Checker, code: str) -> tuple[Outcome, bool]:
    """The script compiled as TypeScript, then type-checked as a module with wexec's globals.
    Returns the outcome and whether the types were checked (a warning says why not)."""
    outcome = syntax(compiler, code, "script.ts")
    if not outcome.valid:
        return outcome, False  # TypeScript would only repeat the parse error
    try:
        found = checker.check(code)
    except Unavailable as exc:
        outcome.warnings.append(Problem(TYPES_NOT_CHECKED.format(why=exc, version=VERSION)))
        return outcome, False
    outcome.errors.extend(Problem(d.message, d.line, d.column, f"TS{d.code}") for d in found)
    return outcome, True


def dependencies(code: str) -> tuple[Outcome, list[Dependency]]:
    """Every module `code` loads, and an error for each one no script can have."""
    found = list(_modules(code))
    outcome = Outcome()
    for dep in found:
        if not dep.builtin:
            outcome.errors.append(Problem(
                f"cannot load {dep.name!r}: wexec scripts have no npm packages or local "
                f"modules; the built-in modules are {', '.join(BUILTIN_MODULES)} (also as "
                "node:<name>)", dep.line, dep.column))
    return outcome, found


def magic_comments(code: str) -> tuple[Outcome, MagicComments | None]:
    """The parsed magic comments, or every problem with its line (no value ever quoted)."""
    try:
        return Outcome(), parse_magic_comments(code)
    except MagicCommentError as exc:
        return Outcome([Problem(message, line) for line, message in exc.problems]), None


def _modules(code: str) -> list[Dependency]:
    toks = tokenize(code)
    text = [code[t.start:t.end] for t in toks]
    lines = _line_starts(code)
    found: list[Dependency] = []
    for i, tok in enumerate(toks):
        if tok.kind != "str":
            continue
        before = text[i - 1] if i > 0 else ""
        call = before == "(" and i > 1 and text[i - 2] in ("require", "import") \
            and (i < 3 or text[i - 3] not in (".", "?.")) and text[i + 1:i + 2] == [")"]
        declared = (before == "from" or (before == "import" and tok.depth == 0)) \
            and not _type_only(text, i)
        if call or declared:
            name = text[i][1:-1]
            line, column = _position(lines, tok)
            bare = name.removeprefix("node:")
            found.append(Dependency(name, line, column, bare in BUILTIN_MODULES))
    return found


def _type_only(text: list[str], at: int) -> bool:
    """`import type … from 'x'` and `export type … from 'x'` load nothing."""
    j = at - 1
    while j >= 0 and text[j] not in ("import", "export", ";"):
        j -= 1
    return j >= 0 and text[j] in ("import", "export") and text[j + 1:j + 2] == ["type"]


def _line_starts(code: str) -> list[int]:
    return [0] + [k + 1 for k, c in enumerate(code) if c == "\n"]


def _position(lines: list[int], tok: Token) -> tuple[int, int]:
    line = bisect_right(lines, tok.start)
    return line, tok.start - lines[line - 1] + 1
