"""`magic-comments/*`: the directives' schema, and reading and editing them in scripts.

The schema is `compiler.magic`'s own directive table and model, so it cannot drift from what the
parser accepts. Edits rewrite only the directive lines of the leading comments, leave every
other line as it was, and must parse afterwards: nothing invalid is ever written.
"""

from __future__ import annotations

import asyncio
import difflib
import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from runtime.api.confined import file_errors, files_of, read_text
from runtime.api.deps import ServicesDep, TenantFields, TenantQuery, tenant_of
from runtime.api.scripts import is_code
from runtime.api.validate import Problem, magic_dump
from runtime.catalog.files import TenantFiles
from runtime.compiler.magic import (
    DIRECTIVES,
    SECRET_DIRECTIVES,
    MagicCommentError,
    MagicComments,
    directive_lines,
    magic_comment_schema,
    parse_magic_comments,
)
from runtime.http.errors import HTTPError

_NAMES = {d.name: d for d in DIRECTIVES} | {d.field: d for d in DIRECTIVES}
_AT = re.compile(r"@([A-Za-z][\w-]*)")

Value = str | int | float | bool | list[str] | dict[str, str] | None
Comments = dict[str, Value] | str


class DirectiveInfo(BaseModel):
    name: str
    syntax: str
    type: str
    default: Any
    values: list[str]
    repeatable: bool
    description: str


class MagicSchema(BaseModel):
    placement: str
    ignored: list[str] = Field(description="Tags other tools own, never an error.")
    directives: list[DirectiveInfo]
    model: dict[str, Any] = Field(description="JSON Schema of the parsed directives, as "
                                  "magicComments in answers shows them.")


class DirectiveLine(BaseModel):
    line: int
    name: str
    value: str = Field(description="As written; secret directives' values are masked.")


class MagicRead(BaseModel):
    path: str
    valid: bool
    comments: dict[str, Any] | None = Field(description="Parsed, defaults filled in, secrets "
                                            "masked; null if invalid.")
    directives: list[DirectiveLine] = Field(description="The directive lines as written.")
    errors: list[Problem]


COMMENTS_DESCRIPTION = (
    "Directives to set: an object ({\"cors\": \"*\", \"timeout\": 5000, \"tags\": [\"a\"], "
    "\"env\": {\"A\": \"1\"}}; null removes a directive; names as in the schema, or their "
    "field names) or directive lines as text (\"// @cors *\\n// @timeout 5000\"). Directives "
    "not named are left as they are.")


class UpdateBody(TenantFields):
    path: str
    comments: Comments = Field(description=COMMENTS_DESCRIPTION)
    dry_run: bool = Field(False, description="Answer what would change without writing.")


class UpdateResult(BaseModel):
    path: str
    changed: bool
    written: bool
    dry_run: bool
    comments: dict[str, Any] = Field(description="The directives after the edit.")
    diff: list[str] = Field(description="Unified diff of the edit.")


class BulkBody(TenantFields):
    directory: str = Field("", description="Folder, relative to the tenant's.")
    comments: Comments = Field(description=COMMENTS_DESCRIPTION)
    extension: str = Field(".ts", description="Only files whose name ends so (.ts or .js).")
    recursive: bool = True
    dry_run: bool = False


class BulkItem(BaseModel):
    path: str
    changed: bool
    written: bool
    error: str | None = None
    diff: list[str] = []


class BulkResult(BaseModel):
    directory: str
    dry_run: bool
    updated: int = Field(description="Files changed (or that would be, in a dry run).")
    unchanged: int
    failed: int
    results: list[BulkItem]


def changes_of(comments: Comments) -> dict[str, list[str] | None]:
    """The edit asked for: each directive's new lines' values (None: remove it)."""
    if isinstance(comments, str):
        asked: dict[str, list[str] | None] = {}
        for raw in comments.splitlines():
            text = raw.strip().removeprefix("//").strip()
            if not text:
                continue
            match = re.fullmatch(r"@([A-Za-z][\w-]*)(?:\s+(.*))?", text)
            if match is None:
                raise _invalid(f"{raw.strip()!r} is not a directive line; write // @name value")
            name = _directive(match.group(1))
            values = asked.setdefault(name, [])
            assert values is not None
            values.append(match.group(2) or "")
        return asked
    return {_directive(key): _values(key, value) for key, value in comments.items()}


def edit(source: str, changes: dict[str, list[str] | None]) -> str:
    """`source` with each named directive's lines replaced (or removed, or added after the
    last directive), every other line untouched."""
    lines = source.splitlines(keepends=True)
    comments = directive_lines(source)
    at: dict[str, list[int]] = {}
    for number, text in comments:
        match = _AT.match(text)
        if match is not None and match.group(1) in _NAMES:
            at.setdefault(_NAMES[match.group(1)].name, []).append(number - 1)
    last = max((i for found in at.values() for i in found), default=None)
    if last is None:
        insert_at = 1 if source.startswith("#!") else 0
    elif lines[last].lstrip().startswith("//"):
        insert_at = last + 1
    else:  # the last directive is in a block comment: new lines go after the comments
        insert_at = comments[-1][0]
    replaced: dict[int, list[str]] = {}
    added: list[str] = []
    newline = "\r\n" if "\r\n" in source else "\n"
    for name, values in changes.items():
        new = [f"// @{name} {v}".rstrip() + newline for v in values or []]
        found = at.get(name, [])
        if not found:
            added.extend(new)
            continue
        for k, index in enumerate(found):
            replaced[index] = _rewritten(lines[index], name, new if k == 0 else [], newline)
    out: list[str] = []
    for index, line in enumerate(lines):
        if index == insert_at:
            out.extend(added)
        out.extend(replaced.get(index, [line]))
    if insert_at >= len(lines):
        if out and not out[-1].endswith(("\n", "\r")):
            out[-1] += newline
        out.extend(added)
    return "".join(out)


def _rewritten(line: str, name: str, new: list[str], newline: str) -> list[str]:
    """A directive's line with the directive replaced by `new` (a block comment's line keeps
    its frame and takes the first value only)."""
    stripped = line.lstrip()
    if stripped.startswith("//"):
        indent = line[:len(line) - len(stripped)]
        return [indent + n for n in new]
    start = line.index("@" + name)
    end = line.find("*/", start)
    tail = line[end:] if end >= 0 else newline
    head = line[:start]
    if not new:
        return [] if not head.strip(" \t*") and end < 0 else [head.rstrip() + " " + tail]
    return [head + new[0].removeprefix("// ").rstrip("\r\n") + (" " if end >= 0 else "") + tail]


def _directive(name: str) -> str:
    directive = _NAMES.get(name)
    if directive is None:
        close = difflib.get_close_matches(name, list(_NAMES), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise _invalid(f"unknown directive {name!r}{hint}; see GET magic-comments/schema")
    return directive.name


def _values(key: str, value: Value) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, dict):
        return [f"{k}={v}" for k, v in value.items()]
    if isinstance(value, list):
        if _directive(key) == "tags":
            return [", ".join(value)]
        return [str(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return [str(value)]


def _invalid(message: str, **details: Any) -> HTTPError:
    return HTTPError(400, "invalid_magic_comments", message, **details)


def _parsed(source: str, path: str) -> MagicComments:
    try:
        return parse_magic_comments(source)
    except MagicCommentError as exc:
        listed = "; ".join(f"line {line}: {m}" for line, m in exc.problems)
        raise _invalid(f"{path}: the magic comments would not parse: {listed}", path=path,
                       problems=[{"line": line, "message": m} for line, m in exc.problems]
                       ) from None


def _apply(files: TenantFiles, path: str, changes: dict[str, list[str] | None], write: bool
           ) -> tuple[str, str, MagicComments]:
    """Read, edit, check and (if `write` and changed) write one script: (before, after, parsed)."""
    if not is_code(path):
        raise HTTPError(400, "not_a_script", f"{path}: magic comments live in .ts and .js "
                        "scripts", path=path)
    before = read_text(files, path)
    after = edit(before, changes)
    magic = _parsed(after, path)
    if write and after != before:
        with file_errors(path):
            files.write(path, after.encode(), create_dirs=False)
    return before, after, magic


def _diff(path: str, before: str, after: str) -> list[str]:
    return [line.rstrip("\n") for line in difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), path, path, n=1)]


router = APIRouter(prefix="/magic-comments", tags=["magic-comments"])


@router.get("/schema", summary="Get Magic Comments Schema")
async def schema(request: Request, services: ServicesDep) -> MagicSchema:
    """Every directive with its syntax, type, accepted values and default: the parser's own
    table, so it is what the server accepts."""
    return MagicSchema(**magic_comment_schema(), model=MagicComments.model_json_schema())


@router.get("/read", summary="Read Magic Comments")
async def read(request: Request, services: ServicesDep,
               path: Annotated[str, Query(description="Script, relative to the tenant's folder.")],
               execId: TenantQuery = None, exec_id: TenantQuery = None,
               subdomain: TenantQuery = None) -> MagicRead:
    """A script's directives as written and as parsed, or every problem with its line."""
    tenant = tenant_of(request, services.catalog)
    source = read_text(files_of(services, tenant), path)
    written = []
    for number, text in directive_lines(source):
        match = re.fullmatch(r"@([A-Za-z][\w-]*)(?:\s+(.*?))?\s*", text)
        if match is not None and match.group(1) in _NAMES:
            name, value = match.group(1), match.group(2) or ""
            shown = "**********" if name in SECRET_DIRECTIVES else value
            written.append(DirectiveLine(line=number, name=name, value=shown))
    try:
        parsed: dict[str, Any] | None = magic_dump(parse_magic_comments(source))
        errors: list[Problem] = []
    except MagicCommentError as exc:
        parsed, errors = None, [Problem(message=m, line=line) for line, m in exc.problems]
    return MagicRead(path=path, valid=not errors, comments=parsed, directives=written,
                     errors=errors)


@router.put("/update", summary="Update Magic Comments Handler")
async def update(request: Request, body: UpdateBody, services: ServicesDep,
                 execId: TenantQuery = None, exec_id: TenantQuery = None,
                 subdomain: TenantQuery = None) -> UpdateResult:
    """Set or remove directives in one script. The result must parse (else 400, nothing
    written); the new version serves before this returns. `dry_run` only reports."""
    tenant = tenant_of(request, services.catalog, body)
    files = files_of(services, tenant)
    before, after, magic = _apply(files, body.path, changes_of(body.comments), not body.dry_run)
    changed = before != after
    if changed and not body.dry_run:
        await services.publish(tenant, body.path)
    return UpdateResult(path=body.path, changed=changed, written=changed and not body.dry_run,
                        dry_run=body.dry_run, comments=magic_dump(magic),
                        diff=_diff(body.path, before, after))


@router.post("/bulk-update", summary="Bulk Update Magic Comments")
async def bulk_update(request: Request, body: BulkBody, services: ServicesDep,
                      execId: TenantQuery = None, exec_id: TenantQuery = None,
                      subdomain: TenantQuery = None) -> BulkResult:
    """The same edit in every script under `directory` whose name ends with `extension`.
    A script whose edit would not parse is left alone and reported; the others are written
    (unless `dry_run`) and served before this returns."""
    if body.extension not in (".ts", ".js"):
        raise HTTPError(400, "invalid_extension", f"extension={body.extension!r}: magic "
                        "comments live in .ts and .js scripts; use one of those")
    tenant = tenant_of(request, services.catalog, body)
    files = files_of(services, tenant)
    changes = changes_of(body.comments)
    with file_errors(body.directory):
        paths = [e.path for e in files.entries(body.directory, recursive=body.recursive)
                 if e.kind == "file" and e.path.endswith(body.extension) and is_code(e.path)
                 and not any(n.startswith(".") for n in e.path.split("/"))]
    results = await asyncio.to_thread(_bulk, files, paths, changes, not body.dry_run)
    written = [r.path for r in results if r.written]
    if written:
        await services.publish(tenant, *written)
    return BulkResult(
        directory=body.directory, dry_run=body.dry_run,
        updated=sum(r.changed for r in results), failed=sum(r.error is not None for r in results),
        unchanged=sum(not r.changed and r.error is None for r in results), results=results)


def _bulk(files: TenantFiles, paths: list[str], changes: dict[str, list[str] | None],
          write: bool) -> list[BulkItem]:
    results = []
    for path in paths:
        try:
            before, after, _ = _apply(files, path, changes, write)
        except HTTPError as exc:
            results.append(BulkItem(path=path, changed=False, written=False, error=exc.message))
            continue
        changed = before != after
        results.append(BulkItem(path=path, changed=changed, written=changed and write,
                                diff=_diff(path, before, after)))
    return results
