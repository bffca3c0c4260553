"""`scripts/*`: read, write, delete, list, tree and move a tenant's files.

Every path is relative to the tenant's folder and goes through `catalog.files.TenantFiles`:
confined (leaving the tenant is `403 Path is excluded from access`), link-safe and atomic. A
write, delete or move of a script is served before the answer leaves (`Services.publish`): the
next request runs the new version, with no reload interval to wait for.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from runtime.api.confined import exists, file_errors, files_of, read_text
from runtime.api.deps import ServicesDep, TenantFields, TenantQuery, tenant_of
from runtime.api.services import Services
from runtime.api.validate import Problem, ScriptReport, magic_dump, script_report
from runtime.catalog.confine import MAX_SCRIPT_BYTES
from runtime.catalog.files import Entry, TenantFiles, parts
from runtime.catalog.routes import RouteError, is_script, route_for
from runtime.catalog.tenants import Tenant
from runtime.compiler.magic import MagicCommentError, MagicComments, parse_magic_comments
from runtime.compiler.shape import detect_shape
from runtime.compiler.tsc import checker
from runtime.http.errors import HTTPError


def is_code(path: str) -> bool:
    """A file the server compiles and may route: `.ts`/`.js`, not `.d.ts`."""
    return path.endswith((".ts", ".js")) and not path.endswith(".d.ts")


def route_of(path: str) -> str | None:
    """The URL path a file answers, if the router serves it."""
    names = path.split("/")
    if not is_script(names[-1]) or any(n.startswith((".", "_")) or n == "node_modules"
                                       for n in names[:-1]):
        return None
    try:
        return route_for(path).pattern
    except RouteError:
        return None


def iso(mtime_ns: int) -> str:
    return datetime.fromtimestamp(mtime_ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


# -- models ---------------------------------------------------------------------------------

class ScriptMetadata(BaseModel):
    size: int
    modified: str = Field(description="Last modification, ISO 8601 UTC.")
    route: str | None = Field(description="The URL path it answers; null if it is no route.")
    served: bool = Field(description="Whether a request to the route runs this file now.")
    error: str | None = Field(None, description="Why the served version cannot run "
                              "(compile or magic-comment error), if it cannot.")


class ScriptRead(BaseModel):
    path: str
    content: str = Field(description="The file as UTF-8 text.")
    magicComments: dict[str, Any] | None = Field(
        description="Parsed directives, defaults filled in, secrets masked; null if they do "
        "not parse (see magicCommentErrors) or the file is not a script.")
    magicCommentErrors: list[Problem] = []
    metadata: ScriptMetadata


class ScriptWrite(TenantFields):
    model_config = ConfigDict(populate_by_name=True)

    path: str = Field(description="Relative to the tenant's folder, e.g. api/users/[id].ts.")
    content: str
    createDirs: bool = Field(True, description="Create missing folders on the way.")
    validate_: bool = Field(
        True, alias="validate",
        description=".ts/.js: syntax, TypeScript, dependencies and magic comments must pass "
        "(400 with `validation` otherwise); .json: must parse; other files are stored as is. "
        "false stores anything verbatim. Unlike the reference, a valid script is never "
        "rewritten: wexec runs the module.exports and export default forms as they are (the "
        "answer's `shape` says which it found), so what is read back is what was written.")
    typeCheck: bool = Field(
        False, description="wexec addition: with validate, also refuse a .ts script that "
        "TypeScript's checker rejects (as validate/typescript reports it). Off by default, "
        "as in the reference, whose write validation parses and transpiles TypeScript but "
        "does not type-check it: a script with a type error still runs.")


class WriteResult(BaseModel):
    success: Literal[True] = True
    path: str
    size: int = Field(description="Bytes written.")
    created: bool = Field(description="No file was there before.")
    validated: bool = Field(description="Whether the content was checked before writing.")
    route: str | None = Field(description="The URL path it answers, live once this returns.")
    shape: Literal["script", "commonjs", "esm"] | None = Field(
        None, description="wexec addition, for a script: top-level code that returns its "
        "answer (canonical), module.exports = handler, or export default handler.")
    validation: ScriptReport | None = Field(None, description="The checks' report, for a "
                                            "validated script.")
    compileError: str | None = Field(
        None, description="validate=false wrote a script that does not compile: the route "
        "keeps answering with the previous version, or its error if there was none.")


class DeleteResult(BaseModel):
    success: Literal[True] = True
    path: str
    deleted: Literal[True] = True


class ScriptItem(BaseModel):
    path: str
    name: str
    route: str | None
    size: int
    modified: str
    metadata: dict[str, Any] | None = Field(
        None, description="mode, enabled, description, label, tags, websocket, schedule: with "
        "metadata=true or any filter on them.")
    magicComments: dict[str, Any] | None = Field(None, description="With include_comments=true.")
    error: str | None = Field(None, description="Why its magic comments do not parse.")


class ScriptList(BaseModel):
    dir: str
    scripts: list[ScriptItem]
    count: int


class TreeBody(TenantFields):
    baseDir: str = ""
    maxDepth: int = Field(10, ge=0, le=64)
    includeMetadata: bool = False


class TreeNode(BaseModel):
    name: str
    path: str
    type: Literal["directory", "file"]
    size: int | None = None
    modified: str | None = None
    route: str | None = None
    metadata: dict[str, Any] | None = None
    children: list[TreeNode] | None = None


class TreeResult(BaseModel):
    baseDir: str
    tree: list[TreeNode]
    files: int
    directories: int


class MoveBody(TenantFields):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from", description="The file or folder to move.")
    to: str
    overwrite: bool = Field(False, description="Replace a file already at `to`.")


class MoveResult(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    success: Literal[True] = True
    from_: str = Field(alias="from")
    to: str
    route: str | None = Field(description="The route `to` answers, live once this returns.")


# -- handlers -------------------------------------------------------------------------------

router = APIRouter(prefix="/scripts", tags=["scripts"])


@router.get("/read", summary="Read Script")
async def read(request: Request, services: ServicesDep,
               path: Annotated[str, Query(description="Relative to the tenant's folder.")],
               execId: TenantQuery = None, exec_id: TenantQuery = None,
               subdomain: TenantQuery = None) -> ScriptRead:
    """The file's content, its parsed magic comments and what the server makes of it."""
    tenant = tenant_of(request, services.catalog)
    files = files_of(services, tenant)
    content = read_text(files, path)
    entry = _entry(files, path)
    magic, problems = None, []
    if is_code(path):
        try:
            magic = magic_dump(parse_magic_comments(content))
        except MagicCommentError as exc:
            problems = [Problem(message=m, line=line) for line, m in exc.problems]
    return ScriptRead(path=path, content=content, magicComments=magic,
                      magicCommentErrors=problems, metadata=_metadata(services, tenant, entry))


@router.post("/write", summary="Write Script")
async def write(request: Request, body: ScriptWrite, services: ServicesDep,
                execId: TenantQuery = None, exec_id: TenantQuery = None,
                subdomain: TenantQuery = None) -> WriteResult:
    """Create or replace a file, atomically. Scripts (.ts/.js) are validated first unless
    `validate` is false; `.json` must parse; anything else is stored as is. When this answers,
    the script's route already runs the new version."""
    tenant = tenant_of(request, services.catalog, body, create=True)
    with file_errors(body.path):
        parts(body.path)  # a path refused by its form is refused before any check runs
    data = body.content.encode()
    if len(data) > MAX_SCRIPT_BYTES:
        raise HTTPError(413, "too_large", f"content is {len(data)} bytes; a file may hold at "
                        f"most {MAX_SCRIPT_BYTES}", path=body.path)
    report = None
    if body.validate_:
        report = await _validated(services, body.path, body.content, tenant.root,
                                  body.typeCheck)
    files = files_of(services, tenant)
    with file_errors(body.path):
        created = not exists(files, body.path)
        files.write(body.path, data, create_dirs=body.createDirs)
    compile_error = None
    if is_code(body.path):
        await services.publish(tenant, body.path)
        compile_error = _rejected(services, tenant, body.path)
    shape = detect_shape(body.content).value if is_code(body.path) else None
    return WriteResult(path=body.path, size=len(data), created=created,
                       validated=body.validate_, route=route_of(body.path), shape=shape,
                       validation=report, compileError=compile_error)


@router.delete("/delete", summary="Delete Script")
async def delete(request: Request, services: ServicesDep,
                 path: Annotated[str, Query(description="Relative to the tenant's folder.")],
                 confirm: Annotated[str | None, Query(
                     description="Must be the literal `true`.")] = None,
                 execId: TenantQuery = None, exec_id: TenantQuery = None,
                 subdomain: TenantQuery = None) -> DeleteResult:
    """Remove a file (or an empty folder); its route stops answering before this returns."""
    if confirm != "true":
        raise HTTPError(400, "confirm_required", "confirm=true parameter required for safety",
                        path=path)
    tenant = tenant_of(request, services.catalog)
    with file_errors(path):
        files_of(services, tenant).delete(path)
    await services.publish(tenant)
    return DeleteResult(path=path)


@router.get("/list", summary="List Scripts")
async def list_scripts(
    request: Request, services: ServicesDep,
    dir: Annotated[str, Query(description="Folder to list, relative to the tenant's.")] = "",
    filter: Annotated[str | None, Query(description="A glob on the path (`api/*.ts`), or a "
                                        "case-insensitive substring of it.")] = None,
    metadata: Annotated[bool, Query(description="Add each script's metadata.")] = False,
    label: Annotated[str | None, Query(description="Only scripts with this @label.")] = None,
    tags: Annotated[str | None, Query(description="Comma-separated: scripts with any of "
                                      "these @tags.")] = None,
    mode: Annotated[Literal["worker", "serverless"] | None, Query()] = None,
    enabled: Annotated[bool | None, Query(description="Only scripts @enabled so.")] = None,
    websocket: Annotated[bool | None, Query()] = None,
    recursive: Annotated[bool, Query(description="Include sub-folders.")] = True,
    include_comments: Annotated[bool, Query(description="Add the parsed magic comments.")
                                ] = False,
    execId: TenantQuery = None, exec_id: TenantQuery = None, subdomain: TenantQuery = None,
) -> ScriptList:
    """Scripts (.ts/.js files) under `dir`, sorted by path. Filters on magic comments read
    each file's directives; a script whose directives do not parse matches none of them."""
    tenant = tenant_of(request, services.catalog)
    files = files_of(services, tenant)
    with file_errors(dir):
        entries = [e for e in files.entries(dir, recursive=recursive)
                   if e.kind == "file" and is_code(e.path) and not _hidden(e.path)]
    wanted_tags = {t for t in (tags or "").replace(" ", ",").split(",") if t}
    filtering = any(v is not None for v in (label, mode, enabled, websocket)) or wanted_tags
    items = []
    for entry in entries:
        if filter is not None and not _matches(filter, entry.path):
            continue
        item = ScriptItem(path=entry.path, name=entry.path.rsplit("/", 1)[-1],
                          route=route_of(entry.path), size=entry.size, modified=iso(entry.mtime_ns))
        if metadata or include_comments or filtering:
            magic, error = _magic_of(files, entry.path)
            if filtering and (magic is None or not _selected(magic, label, wanted_tags, mode,
                                                              enabled, websocket)):
                continue
            item.error = error
            if magic is not None and metadata:
                item.metadata = summary(magic)
            if magic is not None and include_comments:
                item.magicComments = magic_dump(magic)
        items.append(item)
    return ScriptList(dir=dir, scripts=items, count=len(items))


@router.post("/tree", summary="Get Script Tree")
async def tree(request: Request, services: ServicesDep, body: TreeBody | None = None,
               execId: TenantQuery = None, exec_id: TenantQuery = None,
               subdomain: TenantQuery = None) -> TreeResult:
    """The folder tree under `baseDir` to `maxDepth` levels, every file (hidden ones aside),
    with each script's route; `includeMetadata` adds its magic-comment summary."""
    body = body or TreeBody()
    tenant = tenant_of(request, services.catalog, body)
    files = files_of(services, tenant)
    with file_errors(body.baseDir):
        entries = [e for e in files.entries(body.baseDir, recursive=True) if not _hidden(e.path)]
    base = "/".join(n for n in body.baseDir.split("/") if n not in ("", "."))
    roots: list[TreeNode] = []
    folders: dict[str, list[TreeNode]] = {base: roots}
    counts = {"file": 0, "folder": 0}
    for entry in entries:
        parent, _, name = entry.path.rpartition("/")
        depth = entry.path.count("/") - (base.count("/") + 1 if base else 0)
        if depth >= body.maxDepth or parent not in folders:
            continue
        counts[entry.kind] += 1
        if entry.kind == "folder":
            node = TreeNode(name=name, path=entry.path, type="directory", children=[])
            assert node.children is not None
            folders[entry.path] = node.children
        else:
            node = TreeNode(name=name, path=entry.path, type="file", size=entry.size,
                            modified=iso(entry.mtime_ns), route=route_of(entry.path))
            if body.includeMetadata and is_code(entry.path):
                magic, _ = _magic_of(files, entry.path)
                node.metadata = summary(magic) if magic is not None else None
        folders[parent].append(node)
    return TreeResult(baseDir=base, tree=roots, files=counts["file"],
                      directories=counts["folder"])


@router.post("/move", summary="Move Script")
async def move(request: Request, body: MoveBody, services: ServicesDep,
               execId: TenantQuery = None, exec_id: TenantQuery = None,
               subdomain: TenantQuery = None) -> MoveResult:
    """Rename a file or folder in one step; the old route stops and the new one answers
    before this returns. An existing `to` is a 409 unless `overwrite` is true."""
    tenant = tenant_of(request, services.catalog, body)
    with file_errors(body.from_):
        files_of(services, tenant).move(body.from_, body.to, overwrite=body.overwrite)
    await services.publish(tenant, body.to)
    return MoveResult(from_=body.from_, to=body.to, route=route_of(body.to))


# -- helpers ----------------------------------------------------------------------------------

async def _validated(services: Services, path: str, content: str,
                     root: Path, type_check: bool) -> ScriptReport | None:
    """400 unless the content passes the checks its extension calls for (types only when
    `type_check`)."""
    if path.endswith(".json"):
        try:
            json.loads(content)
        except json.JSONDecodeError as exc:
            raise HTTPError(400, "invalid_json", f"Invalid JSON in {path}: {exc.msg} (line "
                            f"{exc.lineno}, column {exc.colno}); fix it or send validate=false",
                            path=path, line=exc.lineno, column=exc.colno) from None
        return None
    if not is_code(path):
        return None
    types = checker(services.settings.cache_dir) if type_check else None
    report = await asyncio.to_thread(script_report, services.sandbox.compiler, types, content,
                                     path, root)
    if not report.valid:
        raise HTTPError(400, "validation_failed",
                        f"Script validation failed: {report.errors[0]}"
                        + (f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1
                           else "") + "; fix it, or send validate=false to store it as is",
                        path=path, validation=report.model_dump(mode="json"))
    return report


def _entry(files: TenantFiles, path: str) -> Entry:
    parent, _, name = path.rpartition("/")
    with file_errors(path):
        for entry in files.entries(parent):
            if entry.path.rpartition("/")[2] == name:
                return entry
    raise HTTPError(404, "not_found", f"{path}: no such file in the tenant's folder", path=path)


def _served(services: Services, tenant: Tenant, path: str) -> Any:
    scripts = services.catalog.view.tenants.get(tenant.name)
    return scripts.scripts.get(path) if scripts is not None else None


def _rejected(services: Services, tenant: Tenant, path: str) -> str | None:
    """The compile error of what was just written, if the catalog could not serve it."""
    scripts = services.catalog.view.tenants.get(tenant.name)
    if scripts is None or route_of(path) is None:
        return None
    current = scripts.scripts.get(path)
    if path in scripts.tried or (current is not None and current.error is not None):
        try:
            services.sandbox.compiler.compile_file(tenant.root, path)
        except Exception as exc:  # noqa: BLE001 - reported, whatever it is
            return str(exc)
    return None


def _metadata(services: Services, tenant: Tenant, entry: Entry) -> ScriptMetadata:
    script = _served(services, tenant, entry.path)
    error = str(script.error) if script is not None and script.error is not None else None
    return ScriptMetadata(size=entry.size, modified=iso(entry.mtime_ns),
                          route=route_of(entry.path), served=script is not None, error=error)


def _magic_of(files: TenantFiles, path: str) -> tuple[MagicComments | None, str | None]:
    try:
        return parse_magic_comments(read_text(files, path)), None
    except MagicCommentError as exc:
        return None, str(exc)
    except HTTPError as exc:
        return None, exc.message


def summary(magic: MagicComments) -> dict[str, Any]:
    return {"mode": magic.mode, "enabled": magic.enabled, "description": magic.description,
            "label": magic.label, "tags": list(magic.tags), "websocket": magic.websocket,
            "schedule": magic.schedule}


def _selected(magic: MagicComments, label: str | None, tags: set[str], mode: str | None,
              enabled: bool | None, websocket: bool | None) -> bool:
    return ((label is None or magic.label == label)
            and (not tags or not tags.isdisjoint(magic.tags))
            and (mode is None or magic.mode == mode)
            and (enabled is None or magic.enabled == enabled)
            and (websocket is None or magic.websocket == websocket))


def _matches(pattern: str, path: str) -> bool:
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(path, pattern)
    return pattern.lower() in path.lower()


def _hidden(path: str) -> bool:
    return any(name.startswith(".") for name in path.split("/"))
