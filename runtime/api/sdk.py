"""`sdk/*`: import an OpenAPI document as a typed client module the tenant's scripts load.

`sdk/import` reads the document (an http(s) URL, fetched by the host under the tenant's fetch
rules, SSRF guard included; or a file in the tenant's folder), generates the client
(`runtime.openapi_client`) and keeps it at `.sdk/<id>.ts` with its record `.sdk/<id>.json`.
A script then writes `const api = require('sdk/<id>')` (or `import api from 'sdk/<id>'`); the
compiler bundles the module in, and its calls are the script's own fetches.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import aiohttp
import yaml
from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field
from yarl import URL

from runtime.api.confined import exists, file_errors, files_of, read_text
from runtime.api.dependencies import republish
from runtime.api.deps import ServicesDep, TenantFields, TenantQuery, tenant_of
from runtime.api.services import Services
from runtime.catalog.files import TenantFiles
from runtime.catalog.tenants import Tenant
from runtime.compiler.magic import MagicCommentError, parse_magic_comments
from runtime.compiler.packages import SDK_FOLDER
from runtime.host import Refused
from runtime.host.fetch.client import client_for, connection_refusal
from runtime.host.fetch.unit import check_url, configure
from runtime.http.errors import HTTPError
from runtime.openapi_client import SpecError, generate

MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
FETCH_TIMEOUT_S = 30
MAX_REDIRECTS = 5
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_RESERVED = frozenset({"list", "import"})


class ImportBody(TenantFields):
    execId: str = Field(description="The tenant's exec id (required, as in the reference).")
    source_url: str = Field(
        description="The OpenAPI 3 document (JSON or YAML): an http(s) URL, fetched by the "
        "server under the tenant's fetch rules (the SSRF guard, WEXEC_FETCH_ALLOW_HOSTS, "
        "WEXEC_TENANT_FETCH_HOSTS), or a path relative to the tenant's folder.")
    source_auth: str | None = Field(
        None, description="Sent verbatim as the Authorization header when fetching source_url "
        "(e.g. `Bearer abc`); never stored or shown, never put in the client.")
    middleware: str | None = Field(
        None, description="wexec's reading: a JavaScript function expression `(request) => "
        "request`, called with each call's `Request` before it is sent; it may return a new "
        "Request (or nothing, to send it as is).")
    magic_comments: str | None = Field(
        None, description="wexec's reading: magic comments for the scripts that use this SDK "
        "(e.g. `// @allow-hosts api.example.com`); validated, kept in the record, put at the "
        "top of the module and of `usage`. They apply to a script only when written in it.")
    force: bool = Field(False, description="Replace an SDK already imported under this id.")
    id: str | None = Field(
        None, description="wexec addition: the SDK's id (what `require('sdk/<id>')` names); "
        "default: the document's title, lower-cased, with '-' between words.")


class OperationInfo(BaseModel):
    name: str = Field(description="The client function's name.")
    method: str
    path: str
    summary: str


class SdkRecord(BaseModel):
    id: str
    module: str = Field(description="What a script requires: sdk/<id>.")
    path: str = Field(description="The generated module, relative to the tenant's folder.")
    title: str
    version: str
    baseUrl: str = Field(description="The document's first server; createClient({baseUrl}) "
                         "overrides it.")
    source: str = Field(description="Where the document came from (a URL's credentials "
                        "removed).")
    importedAt: str
    operations: list[OperationInfo]
    types: list[str]
    middleware: bool = Field(description="Whether a middleware was given.")
    magicComments: str | None
    usage: str = Field(description="How a script uses it.")


class ImportResult(SdkRecord):
    success: Literal[True] = True
    created: bool = Field(description="False when force replaced an existing SDK.")
    recompiled: int = Field(description="The tenant's scripts compiled again with it.")


class SdkDetail(SdkRecord):
    code: str = Field(description="The generated TypeScript module.")


class SdkSummary(BaseModel):
    id: str
    module: str
    title: str
    version: str
    source: str
    importedAt: str
    operations: int


class SdkList(BaseModel):
    sdks: list[SdkSummary]
    count: int


class Deleted(BaseModel):
    success: Literal[True] = True
    id: str
    deleted: Literal[True] = True
    recompiled: int


IdPath = Annotated[str, Path(description="The SDK's id, as sdk/list shows it.")]

router = APIRouter(prefix="/sdk", tags=["sdk"])


@router.post("/import", summary="Import S D K")
async def import_sdk(request: Request, body: ImportBody, services: ServicesDep,
                     exec_id: TenantQuery = None, subdomain: TenantQuery = None) -> ImportResult:
    """Generate a typed client from an OpenAPI 3 document, for the tenant's scripts to load as
    `require('sdk/<id>')`. Its calls go through the sandbox's fetch, under the calling script's
    rules. An id already imported is a 409 unless `force`; a document that cannot be fetched or
    read is a 400 saying why (a refused address names the rule and the setting that opens it)."""
    tenant = tenant_of(request, services.catalog, body)
    if body.magic_comments:
        try:
            parse_magic_comments(body.magic_comments)
        except MagicCommentError as exc:
            raise HTTPError(400, "invalid_magic_comments", "magic_comments: " + "; ".join(
                f"line {line}: {m}" for line, m in exc.problems)) from None
    text, source = await _document(services, tenant, body.source_url, body.source_auth)
    spec = _parse(text)
    try:
        made = generate(spec, source, body.middleware, body.magic_comments)
    except SpecError as exc:
        raise HTTPError(400, "invalid_spec", f"{source}: {exc}") from None
    sdk_id = body.id if body.id is not None else _slug(made.title)
    _check_id(sdk_id)
    files = files_of(services, tenant)
    created = not exists(files, _module(sdk_id))
    if not created and not body.force:
        raise HTTPError(409, "conflict", f"an SDK {sdk_id} already exists; send force=true to "
                        "replace it, or another id", id=sdk_id)
    record = SdkRecord(
        id=sdk_id, module=f"sdk/{sdk_id}", path=_module(sdk_id), title=made.title,
        version=made.version, baseUrl=made.base_url, source=source,
        importedAt=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        operations=[OperationInfo(**vars(o)) for o in made.operations], types=made.types,
        middleware=bool(body.middleware), magicComments=body.magic_comments,
        usage=_usage(sdk_id, body.magic_comments, made.operations[0].name))
    with file_errors(_module(sdk_id)):
        files.write(_module(sdk_id), made.code.encode())
        files.write(_record(sdk_id), record.model_dump_json(indent=2).encode())
    recompiled = await republish(services, tenant)
    return ImportResult(**record.model_dump(), created=created, recompiled=recompiled)


@router.get("/list", summary="List S D Ks")
async def list_sdks(request: Request, services: ServicesDep, execId: TenantQuery = None,
                    exec_id: TenantQuery = None, subdomain: TenantQuery = None) -> SdkList:
    """The tenant's imported SDKs, by id."""
    tenant = tenant_of(request, services.catalog)
    files = files_of(services, tenant)
    found = []
    if exists(files, SDK_FOLDER):
        with file_errors(SDK_FOLDER):
            entries = files.entries(SDK_FOLDER)
        for entry in entries:
            if entry.kind == "file" and entry.path.endswith(".json"):
                record = _load(files, entry.path.rsplit("/", 1)[-1][:-5])
                found.append(SdkSummary(operations=len(record.operations),
                                        **record.model_dump(include={
                                            "id", "module", "title", "version", "source",
                                            "importedAt"})))
    found.sort(key=lambda s: s.id)
    return SdkList(sdks=found, count=len(found))


@router.get("/{id}", summary="Get S D K")
async def get_sdk(request: Request, services: ServicesDep, id: IdPath,
                  execId: TenantQuery = None, exec_id: TenantQuery = None,
                  subdomain: TenantQuery = None) -> SdkDetail:
    """One SDK's record and its generated module."""
    tenant = tenant_of(request, services.catalog)
    files = files_of(services, tenant)
    record = _load(files, id)
    return SdkDetail(**record.model_dump(), code=read_text(files, _module(id)))


@router.delete("/{id}", summary="Delete S D K")
async def delete_sdk(request: Request, services: ServicesDep, id: IdPath,
                     execId: TenantQuery = None, exec_id: TenantQuery = None,
                     subdomain: TenantQuery = None) -> Deleted:
    """Remove an SDK; the scripts that load it are compiled again (and now fail to load it)."""
    tenant = tenant_of(request, services.catalog)
    files = files_of(services, tenant)
    _load(files, id)
    with file_errors(_module(id)):
        files.delete(_module(id))
        files.delete(_record(id))
    return Deleted(id=id, recompiled=await republish(services, tenant))


# -- helpers ----------------------------------------------------------------------------------

async def _document(services: Services, tenant: Tenant, source: str,
                    auth: str | None) -> tuple[str, str]:
    """The document's text and how to name its source (no credentials)."""
    if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", source):
        with file_errors(source):
            return read_text(files_of(services, tenant), source), source
    grant = configure(services.settings, tenant.name)
    shown = str(URL(source).with_user(None)) if URL(source).user else source
    try:
        target = check_url(grant, source)
        session = client_for(grant.guard).session()
        headers = {"authorization": auth} if auth else {}
        for _ in range(MAX_REDIRECTS + 1):
            async with session.get(target, headers=headers, allow_redirects=False,
                                   timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)) as resp:
                if resp.status in (301, 302, 303, 307, 308) and "location" in resp.headers:
                    nxt = target.join(URL(resp.headers["location"]))
                    if nxt.origin() != target.origin():
                        headers = {}
                    target = check_url(grant, str(nxt), str(target))
                    continue
                if resp.status != 200:
                    raise HTTPError(400, "source_unavailable", f"{shown} answered "
                                    f"{resp.status}; check source_url and source_auth",
                                    upstreamStatus=resp.status)
                data = await resp.content.read(MAX_DOCUMENT_BYTES + 1)
                if len(data) > MAX_DOCUMENT_BYTES:
                    raise HTTPError(413, "too_large", f"{shown}: the document is larger than "
                                    f"{MAX_DOCUMENT_BYTES} bytes")
                return data.decode("utf-8", "replace"), shown
        raise HTTPError(400, "source_unavailable", f"{shown}: more than {MAX_REDIRECTS} "
                        "redirects")
    except Refused as exc:
        raise HTTPError(400, "source_refused", f"source_url: {exc}") from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        refusal = connection_refusal(exc)
        reason = str(refusal) if refusal is not None else (str(exc) or type(exc).__name__)
        raise HTTPError(400, "source_refused" if refusal else "source_unavailable",
                        f"source_url: {reason}") from None


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise HTTPError(400, "invalid_spec", f"source_url: neither JSON nor YAML ({exc})"
                        ) from None


def _load(files: TenantFiles, sdk_id: str) -> SdkRecord:
    _check_id(sdk_id)
    if not exists(files, _record(sdk_id)):
        raise HTTPError(404, "not_found", f"no SDK {sdk_id} in this tenant; sdk/list shows "
                        "the ones imported", id=sdk_id)
    try:
        return SdkRecord.model_validate_json(read_text(files, _record(sdk_id)))
    except ValueError as exc:
        raise HTTPError(422, "invalid_record", f"{_record(sdk_id)} is damaged ({exc}); "
                        "import the SDK again with force=true") from None


def _check_id(sdk_id: str) -> None:
    if not _ID.match(sdk_id) or sdk_id in _RESERVED:
        raise HTTPError(400, "invalid_id", f"{sdk_id!r} cannot be an SDK id: use 1-64 "
                        "lower-case letters, digits, '-' or '_' (not list or import); pass "
                        "`id` to choose one", id=sdk_id)


def _slug(title: str) -> str:
    return "-".join(re.findall(r"[a-z0-9]+", title.lower()))[:64] or "api"


def _module(sdk_id: str) -> str:
    return f"{SDK_FOLDER}/{sdk_id}.ts"


def _record(sdk_id: str) -> str:
    return f"{SDK_FOLDER}/{sdk_id}.json"


def _usage(sdk_id: str, magic: str | None, first: str) -> str:
    lines = [ln for ln in (magic or "").splitlines() if ln.strip()]
    return "\n".join([*lines, f"const api = require('sdk/{sdk_id}');",
                      f"return await api.{first}({{}});"]) + "\n"
