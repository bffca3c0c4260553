"""`user-openapi/*`: the tenant's scripts as an OpenAPI document (`catalog/openapi.py`).

The document is generated from the files each time it is asked for, so it is never stale; a
hand-written layer (`merge`) is kept in the tenant's folder and merged over it (JSON Merge
Patch, RFC 7396). Every path is relative to the tenant's folder: an absolute path or one that
climbs out is `403 Path is excluded from access` (the reference also takes absolute paths under
its scripts folder).
"""

from __future__ import annotations

import json
from typing import Any, Literal

import yaml
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from runtime.api.confined import file_errors, files_of
from runtime.api.deps import ServicesDep, TenantFields, tenant_of
from runtime.catalog.files import TenantFiles
from runtime.catalog.openapi import (
    GENERATED,
    LAYER,
    SIDECAR_SUFFIX,
    ScriptDoc,
    SpecError,
    document,
    folder_names,
    path_item,
    problems,
    read_sidecar,
    scripts,
    with_paths,
)
from runtime.catalog.tenants import Tenant
from runtime.http.errors import HTTPError

# Models


class ScriptEntry(BaseModel):
    path: str = Field(description="The script, relative to the tenant's folder.")
    routePath: str = Field(description="Its route in OpenAPI's form (`/api/users/{id}`).")
    routePaths: list[str] = Field(description="Every path it answers in the document (an "
                                              "optional catch-all answers two).")
    hasSchema: bool = Field(description="Whether it has a companion `.openapi.json` file.")
    schemaPath: str = Field(description="Where its companion file is (or would be).")
    methods: list[str] = Field(description="The operations the document gives it.")
    description: str | None = None
    mode: str | None = None
    error: str | None = Field(None, description="Why its magic comments cannot be read.")


class ScriptListing(BaseModel):
    directory: str
    count: int
    scripts: list[ScriptEntry]


class ScriptList(BaseModel):
    success: bool
    data: ScriptListing


class GenerateRequest(TenantFields):
    dir: str | None = Field(None, description="Only scripts under this folder; default: all.")
    directory: str | None = Field(None, description="Alias of dir; dir wins.")
    output: str = Field(GENERATED, description="Where to write the document, relative to the "
                                               "tenant's folder.")
    title: str | None = Field(None, description="info.title; default: the tenant's name.")


class Generated(BaseModel):
    success: bool
    path: str
    paths: int = Field(description="Paths in the document.")
    valid: bool
    problems: list[str]
    spec: dict[str, Any]


class ValidateRequest(TenantFields):
    file: str | None = Field(None, description="The script (or its companion file), relative "
                                               "to the tenant's folder.")
    path: str | None = Field(None, description="Alias of file.")
    schema_: dict[str, Any] | None = Field(
        None, alias="schema",
        description="A companion document to check instead of the file on disk.")


class Validation(BaseModel):
    valid: bool
    file: str
    schemaPath: str
    errors: list[str] = Field(description="Each problem, with where it is in the document.")


class MergeRequest(TenantFields):
    spec: dict[str, Any] = Field(
        description="The hand-written layer: any part of an OpenAPI document (info, servers, "
                    "security, examples, paths...), merged over the generated one as a JSON "
                    "Merge Patch (RFC 7396: objects merge, null removes, the rest replaces).")
    save: bool = Field(True, description="Keep the layer, so `spec` and `generate` apply it "
                                         "from now on (wexec's addition).")
    dir: str | None = Field(None, description="Only scripts under this folder; default: all.")


class Merged(BaseModel):
    success: bool
    saved: bool
    layerPath: str | None
    spec: dict[str, Any]


router = APIRouter(prefix="/user-openapi", tags=["user-openapi"])

# Handlers


@router.get("/list", summary="List the scripts the document describes")
def list_scripts(
    request: Request,
    services: ServicesDep,
    directory: str | None = Query(None, description="Only scripts under this folder, relative "
                                                    "to the tenant's folder; default: all."),
    dir: str | None = Query(None, description="Alias of directory; directory wins."),
) -> ScriptList:
    """Every script the router serves under `directory`, as `{success, data: {scripts}}`.
    `directory` is relative to the tenant's folder (absolute paths are refused: 403)."""
    folder = directory if directory is not None else (dir or "")
    _, docs = _scripts(services, tenant_of(request, services.catalog), folder)
    return ScriptList(success=True, data=ScriptListing(
        directory=folder, count=len(docs), scripts=[_entry(doc) for doc in docs]))


@router.get(
    "/spec", summary="The generated document, with the saved layer merged over it",
    response_model=None,
    responses={200: {"content": {"application/json": {}, "application/yaml": {}}}},
)
def spec(
    request: Request,
    services: ServicesDep,
    dir: str | None = Query(None, description="Only scripts under this folder; default: all."),
    directory: str | None = Query(None, description="Alias of dir; dir wins."),
    format: Literal["json", "yaml"] = Query("json", description="json or yaml."),
) -> Response:
    """Generated from the files each time (never stale), with the layer saved by `merge`
    applied. A companion file that would make the document invalid is left out and named in
    its operations' `x-wexec-error`, so the document always validates."""
    tenant = tenant_of(request, services.catalog)
    files, docs = _scripts(services, tenant, dir if dir is not None else (directory or ""))
    built = _document(request, tenant, files, docs, _layer(files))
    if format == "yaml":
        return Response(yaml.safe_dump(built, sort_keys=False, allow_unicode=True),
                        media_type="application/yaml")
    return JSONResponse(built)


@router.get("/schema", summary="A script's companion .openapi.json file")
def schema(
    request: Request,
    services: ServicesDep,
    file: str | None = Query(None, description="The script, relative to the tenant's folder "
                                               "(e.g. api/users/[id].ts), or its companion file."),
    path: str | None = Query(None, description="Alias of file."),
) -> dict[str, Any]:
    """The companion file as it is on disk. `file` may also name the companion file itself."""
    files = files_of(services, tenant_of(request, services.catalog))
    doc = _script(files, _given(file, path))
    return _sidecar(files, doc)


@router.post("/generate", summary="Write the document into the tenant's folder")
def generate(request: Request, services: ServicesDep, body: GenerateRequest) -> Generated:
    """The document `spec` serves, written to `output` (default `_wexec/openapi.json`) in the
    tenant's folder, with whether it validates."""
    tenant = tenant_of(request, services.catalog, body)
    folder = body.dir if body.dir is not None else (body.directory or "")
    files, docs = _scripts(services, tenant, folder)
    built = _document(request, tenant, files, docs, _layer(files), body.title)
    with file_errors(body.output):
        files.write(body.output, json.dumps(built, indent=2).encode() + b"\n")
    found = problems(built)
    return Generated(success=True, path=body.output, paths=len(built["paths"]),
                     valid=not found, problems=found, spec=built)


@router.post("/validate", summary="Check a script's companion .openapi.json file")
def validate(request: Request, services: ServicesDep, body: ValidateRequest) -> Validation:
    """Checks the script's companion file (or `schema`, sent inline) as its Path Item in an
    OpenAPI 3.0 document with openapi-spec-validator: 200 with `valid` and `errors` either
    way; 404 when there is no companion file to check."""
    files = files_of(services, tenant_of(request, services.catalog, body))
    doc = _script(files, _given(body.file, body.path))
    layer = body.schema_ if body.schema_ is not None else _sidecar(files, doc)
    found = problems(with_paths(doc.path, {p: path_item(doc, layer, p) for p in doc.route_paths}))
    return Validation(valid=not found, file=doc.path, schemaPath=doc.sidecar, errors=found)


@router.post("/merge", summary="Merge a hand-written layer over the generated document")
def merge(request: Request, services: ServicesDep, body: MergeRequest) -> Merged:
    """Merges `spec` over the generated document as a JSON Merge Patch (RFC 7396) and, with
    `save` (default), keeps it so every later document has it. A layer that makes the
    document invalid is refused (400 with the problems) and not kept."""
    tenant = tenant_of(request, services.catalog, body)
    files, docs = _scripts(services, tenant, body.dir or "")
    built = _document(request, tenant, files, docs, body.spec)
    found = problems(built)
    if found:
        raise HTTPError(400, "invalid_spec", "the merged document is not valid OpenAPI, so the "
                        f"layer was not kept: {'; '.join(found[:5])}", problems=found)
    if body.save:
        with file_errors(LAYER):
            files.write(LAYER, json.dumps(body.spec, indent=2).encode() + b"\n")
    return Merged(success=True, saved=body.save, layerPath=LAYER if body.save else None,
                  spec=built)


def _scripts(services: ServicesDep, tenant: Tenant, folder: str
             ) -> tuple[TenantFiles, list[ScriptDoc]]:
    """The tenant's files, and the scripts under `folder` as the document describes them."""
    files = files_of(services, tenant)
    with file_errors(folder):
        return files, scripts(files, folder_names(folder))


def _document(request: Request, tenant: Tenant, files: TenantFiles, docs: list[ScriptDoc],
              layer: dict[str, Any] | None, title: str | None = None) -> dict[str, Any]:
    server = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
    return document(files, docs, title=title or f"{tenant.name} scripts", server=server,
                    layer=layer)


def _layer(files: TenantFiles) -> dict[str, Any] | None:
    try:
        layer = json.loads(files.read(LAYER))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise HTTPError(500, "invalid_layer", f"{LAYER}: the saved layer is not JSON ({exc}); "
                        "send a new one with POST user-openapi/merge", path=LAYER) from None
    return layer if isinstance(layer, dict) else None


def _entry(doc: ScriptDoc) -> ScriptEntry:
    return ScriptEntry(
        path=doc.path, routePath=doc.route_paths[-1], routePaths=doc.route_paths,
        hasSchema=doc.has_sidecar, schemaPath=doc.sidecar, methods=doc.methods,
        description=doc.magic.description if doc.magic else None,
        mode=doc.magic.mode if doc.magic else None, error=doc.magic_error,
    )


def _given(file: str | None, path: str | None) -> str:
    given = file if file is not None else path
    if not given:
        raise HTTPError(400, "missing_file", "give the script as file (or path), relative to "
                        "the tenant's folder, e.g. file=api/users/[id].ts")
    return given


def _script(files: TenantFiles, given: str) -> ScriptDoc:
    """The script `given` names, itself or by its companion file; 404 when none is served."""
    with file_errors(given):
        names = folder_names(given)
        folder = names.rpartition("/")[0]
        docs = scripts(files, folder)
    stem = names.removesuffix(SIDECAR_SUFFIX) if names.endswith(SIDECAR_SUFFIX) else None
    for doc in docs:
        if doc.path == names or (stem is not None and doc.sidecar == names):
            return doc
    raise HTTPError(404, "not_found", f"{given}: no script the router serves is there; give "
                    "the path of a .ts or .js script (or of its .openapi.json file)", path=given)


def _sidecar(files: TenantFiles, doc: ScriptDoc) -> dict[str, Any]:
    """The script's companion file; 404 when it has none, 400 when it is not a JSON object."""
    if not doc.has_sidecar:
        raise HTTPError(404, "no_schema", f"{doc.path} has no companion file; write its OpenAPI "
                        f"Path Item or Operation as JSON to {doc.sidecar}", path=doc.sidecar)
    with file_errors(doc.sidecar):
        try:
            return read_sidecar(files, doc.sidecar)
        except SpecError as exc:
            raise HTTPError(400, "invalid_schema", str(exc), path=doc.sidecar) from None
