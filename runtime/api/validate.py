"""`validate/*`: check a script before it is written, with the checks the server itself makes.

Each answer has `valid` and, per problem, a message with the line and column in the code sent.
`validate/script` runs all four checks (`results.{syntax,typescript,dependencies,magicComments}`);
`scripts/write` runs the same ones unless asked not to (`script_report`), types only on request.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from runtime.api.deps import ServicesDep, TenantFields, TenantQuery, tenant_of
from runtime.compiler import checks
from runtime.compiler.checks import Outcome
from runtime.compiler.compiler import Compiler
from runtime.compiler.magic import MagicComments
from runtime.compiler.tsc import Checker, checker
from runtime.compiler.typecheck import TypeChecker, TypeSyntaxError
from runtime.http.errors import HTTPError


class CodeBody(TenantFields):
    code: str = Field(description="The script's source text.")
    path: str = Field(
        "script.ts",
        description="wexec addition: the name the script would have; its extension (.ts or "
        ".js) picks how it is compiled. Default script.ts.",
    )


class Problem(BaseModel):
    message: str
    line: int | None = Field(None, description="1-based line in the code sent.")
    column: int | None = Field(None, description="1-based column in the code sent.")


class TypeProblem(Problem):
    code: str | None = Field(None, description="wexec addition: TypeScript's error code "
                             "(TS2322...) for a type error; null for a parse error.")


class Check(BaseModel):
    valid: bool
    errors: list[Problem] = []
    warnings: list[Problem] = []

    problem: ClassVar[type[Problem]] = Problem

    @classmethod
    def of(cls, outcome: Outcome, **extra: Any) -> Self:
        return cls(valid=outcome.valid, errors=[cls.problem(**vars(p)) for p in outcome.errors],
                   warnings=[cls.problem(**vars(p)) for p in outcome.warnings], **extra)


class TypeScriptCheck(Check):
    errors: list[TypeProblem] = []  # type: ignore[assignment]
    warnings: list[TypeProblem] = []  # type: ignore[assignment]
    problem: ClassVar[type[Problem]] = TypeProblem
    typeChecked: bool = Field(
        False, description="True when TypeScript's checker (pinned version, as a module with "
        "the globals of wexec.d.ts; a top-level return is allowed) found the errors listed. "
        "False when only the parse and transpile ran: a warning says why (no node or npm on "
        "the server, a parse error, a .js file, or scripts/write without typeCheck=true).")


class Dependency(BaseModel):
    name: str
    line: int
    column: int
    builtin: bool = Field(description="One of the modules the prelude provides.")
    installed: bool = Field(False, description="A package in the tenant's node_modules (or "
                            "an imported SDK, sdk/<id>), bundled into the script.")
    version: str | None = Field(None, description="The installed package's version.")


class DependencyCheck(Check):
    dependencies: list[Dependency] = []
    builtin: list[str] = Field([], description="Modules loaded that wexec provides.")
    installed: list[str] = Field([], description="Modules loaded from the tenant's "
                                 "node_modules or its SDKs.")
    missing: list[str] = Field([], description="Modules loaded that are neither: "
                               "dependencies/install them.")


class MagicCheck(Check):
    magicComments: dict[str, Any] | None = Field(
        None, description="The parsed directives with every default filled in; secret values "
        "(@token, @ai-key) are masked.")


class ScriptResults(BaseModel):
    syntax: Check
    typescript: TypeScriptCheck
    dependencies: DependencyCheck
    magicComments: MagicCheck


class ScriptReport(BaseModel):
    valid: bool
    results: ScriptResults
    errors: list[str] = Field(description="Every error as one line: check, line:column, "
                              "message.")


class ReturnTypeBody(TenantFields):
    typeDefinition: str = Field(
        description="A TypeScript type (`{ id: number }[]`) or declarations (`interface`, "
        "`type`); the value is checked against `typeName`, else the last declared type.")
    value: Any = Field(description="Arbitrary JSON value to validate against the declared "
                       "return type")
    typeName: str | None = Field(None, description="wexec addition: which declared type to "
                                 "check against.")


class Mismatch(BaseModel):
    path: str = Field(description="Where in the value, e.g. $.users[0].name.")
    expected: str
    message: str


class ReturnTypeReport(BaseModel):
    valid: bool
    type: str = Field(description="The type checked against, by name or as written.")
    errors: list[Mismatch]


def magic_dump(magic: MagicComments) -> dict[str, Any]:
    """Directives as JSON with secrets masked (pydantic's SecretStr dumps as stars)."""
    dumped: dict[str, Any] = magic.model_dump(mode="json")
    return dumped


def magic_check(code: str) -> MagicCheck:
    outcome, magic = checks.magic_comments(code)
    parsed = magic_dump(magic) if magic is not None else None
    return MagicCheck.of(outcome, magicComments=parsed)


def dependency_check(code: str, root: Path | None = None,
                     compiler: Compiler | None = None) -> DependencyCheck:
    """The modules `code` loads, against the packages installed in the tenant's folder `root`
    (bundled with `compiler`, if given, to find packages the sandbox cannot run)."""
    outcome, found = checks.dependencies(code, root, compiler)
    return DependencyCheck.of(
        outcome,
        dependencies=[Dependency(**vars(d)) for d in found],
        builtin=sorted({d.name for d in found if d.builtin}),
        installed=sorted({d.name for d in found if d.installed}),
        missing=sorted({d.name for d in found if not d.builtin and not d.installed}),
    )


WRITE_SKIPS_TYPES = ("types were not checked, only parsed and transpiled: scripts/write "
                     "type-checks only with typeCheck=true (validate/typescript always does)")


def typescript_check(compiler: Compiler, types: Checker | None, code: str,
                     path: str) -> TypeScriptCheck:
    """The TypeScript check of `code` at `path`; `types` None parses and transpiles only."""
    if not path.endswith(".ts"):
        return TypeScriptCheck(valid=True, warnings=[TypeProblem(
            message=f"{path} is JavaScript: there is no TypeScript to check")])
    if types is None:
        outcome = checks.syntax(compiler, code, "script.ts")
        outcome.warnings.append(checks.Problem(WRITE_SKIPS_TYPES))
        return TypeScriptCheck.of(outcome)
    outcome, checked = checks.typescript(compiler, types, code)
    return TypeScriptCheck.of(outcome, typeChecked=checked)


def script_report(compiler: Compiler, types: Checker | None, code: str, path: str,
                  root: Path | None = None) -> ScriptReport:
    """Every check on `code`, as `validate/script` and `scripts/write` answer it, for a script
    of the tenant whose folder is `root`; `types` None leaves the types unchecked
    (scripts/write unless asked)."""
    results = ScriptResults(
        syntax=Check.of(checks.syntax(compiler, code, path)),
        typescript=typescript_check(compiler, types, code, path),
        dependencies=dependency_check(code, root, compiler),
        magicComments=magic_check(code),
    )
    errors = [
        f"{name}: {_where(p)}{p.code + ' ' if isinstance(p, TypeProblem) and p.code else ''}"
        f"{p.message}"
        for name, check in (("syntax", results.syntax), ("typescript", results.typescript),
                            ("dependencies", results.dependencies),
                            ("magicComments", results.magicComments))
        for p in check.errors
    ]
    return ScriptReport(valid=not errors, results=results, errors=errors)


def _where(p: Problem) -> str:
    if p.line is None:
        return ""
    return f"line {p.line}" + (f":{p.column}" if p.column is not None else "") + ": "


def _path(body: CodeBody) -> str:
    if not body.path.endswith((".ts", ".js")) or "\0" in body.path:
        raise HTTPError(400, "invalid_path",
                        f"path={body.path!r}: give a .ts or .js name; only those are scripts",
                        path=body.path)
    return body.path


router = APIRouter(prefix="/validate", tags=["validate"])
# Handlers that compile are plain functions: FastAPI runs them on its thread pool, off the loop.


@router.post("/script", summary="Validate Script")
def validate_script(request: Request, body: CodeBody, services: ServicesDep,
        execId: TenantQuery = None, exec_id: TenantQuery = None,
        subdomain: TenantQuery = None) -> ScriptReport:
    """Syntax (the real compile), TypeScript (parse, transpile and TypeScript's type check
    against wexec.d.ts), dependencies (built-in modules, installed packages, imported SDKs) and
    magic comments, each in its `results` slot. A type error makes the script invalid here."""
    tenant = tenant_of(request, services.catalog, body)
    return script_report(services.sandbox.compiler, checker(services.settings.cache_dir),
                         body.code, _path(body), tenant.root)


@router.post("/syntax", summary="Validate Syntax")
def validate_syntax(request: Request, body: CodeBody, services: ServicesDep,
        execId: TenantQuery = None, exec_id: TenantQuery = None,
        subdomain: TenantQuery = None) -> Check:
    """The compile the server makes of a script at `path` (default script.ts)."""
    tenant_of(request, services.catalog, body)
    return Check.of(checks.syntax(services.sandbox.compiler, body.code, _path(body)))


@router.post("/typescript", summary="Validate Type Script")
def validate_typescript(request: Request, body: CodeBody, services: ServicesDep,
        execId: TenantQuery = None, exec_id: TenantQuery = None,
        subdomain: TenantQuery = None) -> TypeScriptCheck:
    """Parses and transpiles the code as TypeScript, as the server does, then type-checks it
    with TypeScript (pinned version) as a module with the globals of wexec.d.ts (`GET
    /types`); a top-level `return` is allowed. Each error has its line, column and TS code.
    The first check of a server process may take seconds (npm installs TypeScript into the
    build cache once; the checker process starts); later ones take tens of milliseconds.
    Without node and npm on the server `typeChecked` is false and a warning says why. A .js
    `path` has no types to check."""
    tenant_of(request, services.catalog, body)
    return typescript_check(services.sandbox.compiler, checker(services.settings.cache_dir),
                            body.code, _path(body))


@router.post("/dependencies", summary="Validate Dependencies")
def validate_dependencies(request: Request, body: CodeBody, services: ServicesDep,
        execId: TenantQuery = None, exec_id: TenantQuery = None,
        subdomain: TenantQuery = None) -> DependencyCheck:
    """Every module the code loads. Its built-in modules (crypto, buffer, url, util, timers,
    process) pass, and so do npm packages installed in the tenant's node_modules
    (dependencies/install) and its SDKs (sdk/<id>), bundled as a compile would: a package that
    needs a Node built-in the sandbox lacks is an error naming it. Local modules (./x) are
    not bundled."""
    tenant = tenant_of(request, services.catalog, body)
    return dependency_check(body.code, tenant.root, services.sandbox.compiler)


@router.post("/magic-comments", summary="Validate Magic Comments")
async def validate_magic_comments(request: Request, body: CodeBody, services: ServicesDep,
        execId: TenantQuery = None, exec_id: TenantQuery = None,
        subdomain: TenantQuery = None) -> MagicCheck:
    """The magic-comment parser the server uses; every problem names its line."""
    tenant_of(request, services.catalog, body)
    return magic_check(body.code)


@router.post("/return-type", summary="Validate Return Type")
async def validate_return_type(request: Request, body: ReturnTypeBody, services: ServicesDep,
        execId: TenantQuery = None, exec_id: TenantQuery = None,
        subdomain: TenantQuery = None) -> ReturnTypeReport:
    """A JSON value against a TypeScript type: primitives, literals, arrays, tuples, object
    types and interfaces (optional members, index signatures, extends), aliases, unions,
    intersections, Record, Partial, Required, Readonly, Promise. Objects may carry members
    their type does not name, as in TypeScript. A definition outside that subset is a 400."""
    tenant_of(request, services.catalog, body)
    try:
        checker = TypeChecker(body.typeDefinition, body.typeName)
    except TypeSyntaxError as exc:
        raise HTTPError(400, "invalid_type",
                        f"typeDefinition: {exc}", line=exc.line, column=exc.column) from None
    found = checker.check(body.value)
    shown = checker.name or body.typeDefinition.strip()
    return ReturnTypeReport(valid=not found, type=shown,
                            errors=[Mismatch(**vars(m)) for m in found])
