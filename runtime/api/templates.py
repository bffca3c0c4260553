"""`templates/*`: list, preview and generate scripts from templates; a tenant's own templates.

Built-in templates ship with wexec (`runtime/templates/`); a tenant's own live in its folder under
`_wexec/templates/` (`_hoody/templates/`, the reference's folder, is read too). Every endpoint
acts on the tenant `execId`/`subdomain` name (query first, then body), else the Host header's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from runtime.api.confined import exists, file_errors, files_of
from runtime.api.deps import ServicesDep, TenantFields, tenant_of
from runtime.api.services import Services
from runtime.catalog.files import TenantFiles, parts
from runtime.catalog.live import shown
from runtime.catalog.tenants import Tenant
from runtime.http.errors import HTTPError
from runtime.templates import (
    BuiltinTemplate,
    CustomTemplates,
    InvalidTemplate,
    Template,
    TemplateExists,
    UnknownTemplate,
    builtins,
    default_output,
    render,
)

# Models


class TemplateMetadata(BaseModel):
    """What describes a template; fields beyond these are kept as given."""

    model_config = ConfigDict(extra="allow")

    name: str
    category: str = Field(description="e.g. api, webhook, state, ai; custom templates default "
                                      "to `custom`.")
    tags: list[str]
    description: str
    params: list[str] = Field(description="Every `{{name}}` placeholder of the code, in order.")
    defaults: dict[str, Any] = Field(
        description="A value for some placeholders, used when no variable gives one (wexec's "
                    "addition: every built-in template renders to a working script without "
                    "variables).")
    version: str
    author: str | None = None
    language: Literal["typescript", "javascript"] = Field(
        description="The code's language; a custom template is `javascript` unless its "
                    "metadata says `typescript`.")
    outputPath: str | None = Field(
        None, description="Where `generate` saves the code when no outputPath is given "
                          "(otherwise `<name>.ts` or `<name>.js`).")


class TemplateSummary(BaseModel):
    name: str
    source: Literal["builtin", "custom"]
    metadata: TemplateMetadata


class TemplateList(BaseModel):
    count: int
    templates: list[TemplateSummary]


class PreviewedTemplate(BaseModel):
    name: str
    metadata: TemplateMetadata
    code: str = Field(description="The code with the variables (then the defaults) substituted.")
    originalCode: str = Field(description="The template's code as stored, placeholders and all.")
    substituted: bool = Field(description="Whether any placeholder was replaced.")
    missing: list[str] = Field(description="Placeholders no variable or default filled; they "
                                           "are left in `code` as they are.")


class Preview(BaseModel):
    template: PreviewedTemplate


class GenerateRequest(TenantFields):
    name: str = Field(description="The template's name.")
    variables: dict[str, Any] = Field(
        default_factory=dict,
        description="A value per placeholder; strings are substituted as they are, other JSON "
                    "values as JSON text.")
    outputPath: str | None = Field(
        None, description="Where to save the code, relative to the tenant's folder; default: "
                          "the template's metadata.outputPath, else `<name>.ts|js`.")
    saveFile: bool = Field(False, description="Write the code to outputPath.")
    overwrite: bool = Field(
        False, description="Replace a file already at outputPath (wexec's addition: without "
                           "it, saving over an existing file is a 409, so no script is lost).")


class Generated(BaseModel):
    generated: bool
    template: str
    code: str
    saved: bool
    path: str | None = Field(description="The saved file, relative to the tenant's folder.")
    variables: dict[str, str] = Field(description="What each placeholder was replaced with.")
    missing: list[str] = Field(description="Placeholders left unfilled (saving needs none).")
    route: str | None = Field(
        None, description="The URL path the saved script answers, live when this response "
                          "is sent; null when the file is not a route.")
    compileError: str | None = Field(
        None, description="Why the saved script does not compile, if it does not (requests "
                          "to its route answer this as a 500 until it is fixed).")


class CreateCustomRequest(TenantFields):
    name: str = Field(description="1 to 64 lower-case letters, digits, '-' or '_'.")
    code: str = Field(description="The template's code, with `{{name}}` placeholders.")
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="category, tags, description, version, author, defaults, language, "
                    "outputPath and any other field. `params`, if given, must list exactly "
                    "the code's placeholders; left out, it is taken from the code.")


class Created(BaseModel):
    created: bool
    name: str
    path: str = Field(description="The template's code file, relative to the tenant's folder "
                                  "(the reference answers an absolute server path).")
    metadata: TemplateMetadata


class UpdateCustomRequest(TenantFields):
    code: str | None = Field(None, description="New code; left out, the code stays.")
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Fields merged over the stored metadata; `params` follows the code.")


class Updated(BaseModel):
    updated: bool
    name: str
    metadata: TemplateMetadata


class Deleted(BaseModel):
    deleted: bool
    name: str


router = APIRouter(prefix="/templates", tags=["templates"])

# Handlers


@router.get("/list", summary="List templates")
def list_templates(
    request: Request,
    services: ServicesDep,
    category: str | None = Query(
        None, description="Only templates of this metadata category (e.g. api, ai)."),
    includeBuiltin: bool = Query(True, description="Include wexec's built-in templates."),
    includeCustom: bool = Query(
        True, description="Include the tenant's own (_wexec/templates/, _hoody/templates/)."),
) -> TemplateList:
    """Built-in templates first, then the tenant's own by name. Each item also says its
    `source` (builtin or custom; wexec's addition)."""
    found: list[Template] = []
    if includeBuiltin:
        found += builtins().values()
    if includeCustom:
        with _custom(services, _tenant(request, services)) as custom:
            found += sorted(custom.all().values(), key=lambda t: t.name)
    if category is not None:
        found = [t for t in found if t.metadata.get("category") == category]
    return TemplateList(count=len(found), templates=[
        TemplateSummary(name=t.name, source=t.source, metadata=TemplateMetadata(**t.metadata))
        for t in found
    ])


@router.get("/preview", summary="Preview a template with variables substituted")
def preview(
    request: Request,
    services: ServicesDep,
    name: str = Query(description="The template's name."),
    variables: str | None = Query(
        None, description='A JSON object, a value per placeholder: {"url": "https://…"}.'),
) -> Preview:
    """`variables` is a JSON object in the query string. Placeholders no variable fills take
    the template's default; any left are listed in `missing` (wexec's addition) and stay in
    `code` as they are."""
    given = _variables(variables)
    template = _template(services, _tenant(request, services), name)
    rendered = render(template, given)
    return Preview(template=PreviewedTemplate(
        name=template.name, metadata=TemplateMetadata(**template.metadata), code=rendered.code,
        originalCode=template.code, substituted=rendered.substituted, missing=rendered.missing,
    ))


@router.post("/generate", summary="Generate a script from a template, optionally saving it")
async def generate(request: Request, services: ServicesDep, body: GenerateRequest) -> Generated:
    """With `saveFile`, the code is written atomically inside the tenant's folder and its
    route answers with it when this response is sent. wexec's choices where the reference is
    silent: saving needs every placeholder filled (400 naming the missing ones); an existing
    file is replaced only with `overwrite: true` (409 otherwise); `path` is relative to the
    tenant's folder; `route` and `compileError` say what the saved script serves."""
    tenant = tenant_of(request, services.catalog, body)
    template = await asyncio.to_thread(_template, services, tenant, body.name)
    rendered = render(template, body.variables)
    answer = Generated(generated=True, template=template.name, code=rendered.code, saved=False,
                       path=None, variables=rendered.values, missing=rendered.missing)
    if not body.saveFile:
        return answer
    if rendered.missing:
        raise HTTPError(
            400, "missing_variables",
            f"template {template.name} needs a value for {', '.join(rendered.missing)}; give "
            "them in variables", missing=rendered.missing)
    path = await asyncio.to_thread(_save, files_of(services, tenant),
                                   body.outputPath or default_output(template), rendered.code,
                                   body.overwrite)
    await services.publish(tenant, path)
    served = services.catalog.view.tenants[tenant.name]
    script = served.scripts.get(path)
    error: str | None = None
    if path in served.tried:  # a replaced script that does not compile: the old one answers
        error = await asyncio.to_thread(_compile_error, services, tenant, path)
    elif script is not None and script.error is not None:
        error = shown(script.error)
    return answer.model_copy(update={
        "saved": True, "path": path, "compileError": error,
        "route": script.route.pattern if script is not None else None,
    })


@router.post("/create-custom", summary="Create a custom template")
def create_custom(request: Request, services: ServicesDep, body: CreateCustomRequest) -> Created:
    """Stored as `_wexec/templates/<name>.js` (`.ts` when `metadata.language` is
    `typescript`) beside `<name>.json`. wexec's choices: the name is 1 to 64 lower-case
    letters, digits, `-` or `_`; it may not be a built-in template's or an existing custom
    one's (409); `metadata.params` is the code's placeholders (400 when it lists others)."""
    with _custom(services, tenant_of(request, services.catalog, body)) as custom:
        template = custom.create(body.name, body.code, body.metadata)
    return Created(created=True, name=template.name, path=template.path,
                   metadata=TemplateMetadata(**template.metadata))


@router.put("/update-custom/{name}", summary="Update a custom template (metadata merged)")
def update_custom(request: Request, services: ServicesDep, name: str,
                  body: UpdateCustomRequest) -> Updated:
    """`code` replaces the code; `metadata` is merged field by field over the stored one, and
    `params` follows the new code. Built-in templates cannot be changed (403)."""
    with _custom(services, tenant_of(request, services.catalog, body)) as custom:
        template = custom.update(name, body.code, body.metadata)
    return Updated(updated=True, name=template.name,
                   metadata=TemplateMetadata(**template.metadata))


@router.delete("/delete-custom/{name}", summary="Delete a custom template (not a built-in one)")
def delete_custom(request: Request, services: ServicesDep, name: str) -> Deleted:
    """Removes the template's code and metadata files (from `_wexec/templates/` or
    `_hoody/templates/`). Built-in templates cannot be deleted (403)."""
    with _custom(services, _tenant(request, services)) as custom:
        custom.delete(name)
    return Deleted(deleted=True, name=name)


def _template(services: Services, tenant: Tenant, name: str) -> Template:
    with _custom(services, tenant) as custom:
        return custom.get(name)


def _save(files: TenantFiles, given: str, code: str, overwrite: bool) -> str:
    """Write generated code at `given` (normalised, and returned), never over a file unasked."""
    with file_errors(given):
        path = "/".join(parts(given))
        if not overwrite and exists(files, path):
            raise FileExistsError(f"{path}: already exists; pass overwrite: true to replace it")
        files.write(path, code.encode())
    return path


def _compile_error(services: Services, tenant: Tenant, path: str) -> str | None:
    try:
        services.sandbox.compiler.compile_file(tenant.root, path)
    except Exception as exc:  # noqa: BLE001 - reported, whatever it is
        return f"{shown(exc)} (the previous version is still served)"
    return None


def _tenant(request: Request, services: Services) -> Tenant:
    return tenant_of(request, services.catalog)


@contextmanager
def _custom(services: Services, tenant: Tenant) -> Iterator[CustomTemplates]:
    """The tenant's templates, what they refuse answered as the API's errors."""
    try:
        with file_errors("_wexec/templates"):
            yield CustomTemplates(files_of(services, tenant))
    except UnknownTemplate as exc:
        raise HTTPError(404, "unknown_template", str(exc)) from None
    except BuiltinTemplate as exc:
        raise HTTPError(403, "builtin_template", str(exc)) from None
    except TemplateExists as exc:
        raise HTTPError(409, "template_exists", str(exc)) from None
    except InvalidTemplate as exc:
        raise HTTPError(400, "invalid_template", str(exc)) from None


def _variables(text: str | None) -> dict[str, Any]:
    if text is None or text == "":
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise HTTPError(400, "invalid_variables",
                        f"variables is not JSON ({exc}); send a JSON object such as "
                        '{"url": "https://example.com"}') from None
    if not isinstance(value, dict):
        raise HTTPError(400, "invalid_variables",
                        'variables must be a JSON object of placeholder values, e.g. '
                        '{"url": "https://example.com"}')
    return value


