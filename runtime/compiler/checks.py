"""What the management API's validation reports, each check made by the part that runs scripts.

- syntax: the real compile (shape rewrite, esbuild, QuickJS bytecode), as the catalog does it.
- typescript: the same compile with esbuild's TypeScript loader (it parses and transpiles), then
  the pinned TypeScript's checker against wexec.d.ts (tsc.py). Where node or npm is missing the
  type check is skipped and a warning says why and how to fix it.
- dependencies: every module a script loads (`require`, `import`, `import()`): one of the
  prelude's built-in modules, a package installed in the tenant's `node_modules` (which must
  bundle: no built-in module the sandbox lacks) or an imported SDK, else an error.
- magic comments: the parser the catalog uses, every problem with its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .compiler import Compiler
from .errors import CompileError
from .magic import MagicCommentError, MagicComments, parse_magic_comments
from .packages import BUILTIN_MODULES, SDK_FOLDER, installed, package_of, sdk_of
from .scan import imports
from .shape import Shape, detect_shape
from .tsc import VERSION, Checker, Unavailable

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
    installed: bool = False
    """A package in the tenant's node_modules, or an imported SDK (`sdk/<id>`)."""
    version: str | None = None


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


def dependencies(code: str, root: Path | None = None,
                 compiler: Compiler | None = None) -> tuple[Outcome, list[Dependency]]:
    """Every module `code` loads, and an error for each one a script at `root` (a tenant's
    folder) cannot have; with `compiler`, the installed packages are bundled as a compile
    would, so one needing a built-in module the sandbox lacks is an error naming it."""
    found = [_dependency(root, i.name, i.line, i.column) for i in imports(code)]
    outcome = Outcome()
    for dep in found:
        if not dep.builtin and not dep.installed:
            where = "installed in this tenant's node_modules" if root is not None else "given"
            outcome.errors.append(Problem(
                f"cannot load {dep.name!r}: it is not a built-in module ({', '.join(BUILTIN_MODULES)}"
                f", also as node:<name>) nor a package {where}; install it with "
                "POST /api/v1/exec/dependencies/install", dep.line, dep.column))
    if root is not None and compiler is not None and any(d.installed for d in found):
        try:
            compiler.bundle_check(root, code)
        except CompileError as exc:
            first = next(d for d in found if d.installed)
            outcome.errors.append(Problem(exc.message, first.line, first.column))
    return outcome, found


def _dependency(root: Path | None, name: str, line: int, column: int) -> Dependency:
    if name.removeprefix("node:") in BUILTIN_MODULES:
        return Dependency(name, line, column, builtin=True)
    if root is None:
        return Dependency(name, line, column, builtin=False)
    sdk = sdk_of(name)
    if sdk is not None:
        return Dependency(name, line, column, False, (root / SDK_FOLDER / f"{sdk}.ts").is_file())
    package = package_of(name)
    manifest = installed(root, package) if package is not None else None
    version = manifest.get("version") if manifest is not None else None
    return Dependency(name, line, column, False, manifest is not None,
                      version if isinstance(version, str) else None)


SOCKETS_NEED_A_MODULE = (
    "@websocket handlers are set at module scope, which runs once when the worker starts, but "
    "a script that returns its answer from top-level code has none: its whole body runs per "
    "HTTP request, so its ws.* handlers exist only after one. Export the HTTP handler instead "
    "(module.exports = (req, res) => ..., or export default) and set ws.open/ws.message beside it"
)


def magic_comments(code: str) -> tuple[Outcome, MagicComments | None]:
    """The parsed magic comments, or every problem with its line (no value ever quoted); a
    warning for directives the script's shape defeats."""
    try:
        magic = parse_magic_comments(code)
    except MagicCommentError as exc:
        return Outcome([Problem(message, line) for line, message in exc.problems]), None
    outcome = Outcome()
    if magic.websocket:
        try:
            shape = detect_shape(code)
        except CompileError:  # the syntax check reports it
            shape = None
        if shape is Shape.SCRIPT:
            outcome.warnings.append(Problem(SOCKETS_NEED_A_MODULE))
    return outcome, magic
