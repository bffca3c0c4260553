"""A tenant's scripts as an OpenAPI 3.0 document: one path per route, shapes where they are known.

Routes come from the files (`routes.route_for`), so the document lists what the router serves.
Each operation is described by, in rising order of precedence: the script's magic comments
(`@description`, `@label`, `@tags`, `@token`, `@mode`), the TypeScript types it declares under
the names `RequestBody`, `ResponseBody` and `Query` (`compiler.tstypes`), and its companion file
`<script>.openapi.json`, written by hand. A companion file holds an OpenAPI Path Item (operations
by method), or one Operation applied to every method of the script.

A script answers any method; its operations are the methods it compares `metadata.method` or
`req.method` with (`=== 'PUT'`, `case 'DELETE':`), or GET and POST when it names none.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from openapi_spec_validator import OpenAPIV30SpecValidator, OpenAPIV31SpecValidator

from runtime.catalog.files import TenantFiles, parts
from runtime.catalog.routes import (
    CATCH_ALL,
    DYNAMIC,
    OPTIONAL_CATCH_ALL,
    Route,
    RouteError,
    is_script,
    route_for,
)
from runtime.compiler.magic import MagicCommentError, MagicComments, parse_magic_comments
from runtime.compiler.tstypes import declared_types

OPENAPI_VERSION = "3.0.3"
SIDECAR_SUFFIX = ".openapi.json"
GENERATED = "_wexec/openapi.json"
"""Where `generate` writes the document in the tenant's folder."""
LAYER = "_wexec/openapi.layer.json"
"""The hand-written layer `merge` keeps, merged over every generated document."""
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PATH_ITEM_KEYS = {*METHODS, "summary", "description", "parameters", "servers", "$ref"}
_METHOD_NAMED = re.compile(
    r"""(?:\.method\s*[!=]==?\s*|case\s+)['"](GET|PUT|POST|DELETE|OPTIONS|HEAD|PATCH)['"]""")
_ERROR = {"type": "object", "properties": {"error": {"type": "string"},
                                           "message": {"type": "string"}},
          "required": ["error", "message"]}


class SpecError(ValueError):
    """A document or companion file that is not what it must be; the message says what."""


@dataclass(slots=True)
class ScriptDoc:
    """What the document says about one script."""

    path: str
    route: Route
    sidecar: str
    has_sidecar: bool
    magic: MagicComments | None
    magic_error: str | None
    types: dict[str, dict[str, Any]] = field(default_factory=dict)
    methods: list[str] = field(default_factory=list)

    @property
    def route_paths(self) -> list[str]:
        """The route in OpenAPI's form; an optional catch-all is two paths (with and without)."""
        names = []
        for segment in self.route.segments:
            names.append(segment.value if segment.kind not in (DYNAMIC, CATCH_ALL,
                                                               OPTIONAL_CATCH_ALL)
                         else f"{{{segment.value}}}")
        full = "/" + "/".join(names)
        last = self.route.segments[-1] if self.route.segments else None
        if last is not None and last.kind == OPTIONAL_CATCH_ALL:
            return [("/" + "/".join(names[:-1])) if len(names) > 1 else "/", full]
        return [full]


def sidecar_of(path: str) -> str:
    """The companion file of a script: `api/users/[id].ts` → `api/users/[id].openapi.json`."""
    return path.rsplit(".", 1)[0] + SIDECAR_SUFFIX


def scripts(files: TenantFiles, folder: str = "") -> list[ScriptDoc]:
    """Every script the router serves under `folder`, read for the document."""
    present = {entry.path for entry in files.entries(folder, recursive=True)
               if entry.kind == "file"}
    found = []
    for path in sorted(present):
        names = path.split("/")
        if not is_script(names[-1]) or any(n.startswith((".", "_")) or n == "node_modules"
                                           for n in names[:-1]):
            continue
        try:
            route = route_for(path)
        except RouteError:
            continue
        source = files.read(path).decode("utf-8", errors="replace")
        magic: MagicComments | None = None
        magic_error = None
        try:
            magic = parse_magic_comments(source)
        except MagicCommentError as exc:
            magic_error = str(exc)
        if magic is not None and not magic.enabled:
            continue
        methods = sorted({m.lower() for m in _METHOD_NAMED.findall(source)},
                         key=METHODS.index) or ["get", "post"]
        sidecar = sidecar_of(path)
        found.append(ScriptDoc(path, route, sidecar, sidecar in present, magic, magic_error,
                               declared_types(source), methods))
    return found


def read_sidecar(files: TenantFiles, path: str) -> dict[str, Any]:
    """A companion file's JSON object; SpecError when it is not one."""
    try:
        value = json.loads(files.read(path))
    except ValueError as exc:
        raise SpecError(f"{path}: is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise SpecError(f"{path}: must hold a JSON object (a Path Item or an Operation)")
    return value


def path_item(doc: ScriptDoc, sidecar: dict[str, Any] | None, route_path: str) -> dict[str, Any]:
    """The Path Item of one script at one of its route paths, its companion file applied."""
    item: dict[str, Any] = {}
    for method in doc.methods:
        item[method] = _operation(doc, method, route_path)
    if sidecar is None:
        return item
    if set(sidecar) <= _PATH_ITEM_KEYS:
        return merge_patch(item, sidecar)
    return {method: merge_patch(operation, sidecar) for method, operation in item.items()}


def document(files: TenantFiles, docs: list[ScriptDoc], *, title: str, server: str | None,
             layer: dict[str, Any] | None = None) -> dict[str, Any]:
    """The tenant's OpenAPI document, with `layer` merged over it (RFC 7396)."""
    paths: dict[str, Any] = {}
    uses_token = False
    for doc in docs:
        for route_path, item in _items(files, doc).items():
            paths.setdefault(route_path, item)
        uses_token |= doc.magic is not None and doc.magic.token is not None
    spec: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": "1.0.0",
                 "description": "Generated by wexec from the scripts' files, magic comments, "
                                "TypeScript types and companion .openapi.json files."},
        "paths": dict(sorted(paths.items())),
    }
    if server is not None:
        spec["servers"] = [{"url": server}]
    if uses_token:
        spec["components"] = {"securitySchemes": {
            "token": {"type": "http", "scheme": "bearer",
                      "description": "A script's @token, also accepted as the Basic password, "
                                     "an X-Token header or ?token="}}}
    return merge_patch(spec, layer) if layer is not None else spec


def with_paths(title: str, paths: dict[str, Any]) -> dict[str, Any]:
    """The smallest document holding `paths`: what a companion file is checked in."""
    return {"openapi": OPENAPI_VERSION, "info": {"title": title, "version": "1.0.0"},
            "paths": paths}


def _items(files: TenantFiles, doc: ScriptDoc) -> dict[str, Any]:
    """A script's Path Items by route path, its companion file applied only if the result is
    valid: one broken file must not break the tenant's whole document. A file left out is
    named, with why, in each operation's `x-wexec-error`."""
    if doc.has_sidecar:
        try:
            sidecar = read_sidecar(files, doc.sidecar)
            items = {p: path_item(doc, sidecar, p) for p in doc.route_paths}
            found = problems(with_paths(doc.path, items))
        except SpecError as exc:
            found = [str(exc)]
        if not found:
            return items
    items = {p: path_item(doc, None, p) for p in doc.route_paths}
    if doc.has_sidecar:
        note = (f"{doc.sidecar} is not applied, it would make the document invalid: "
                + "; ".join(found[:3]) + " (POST user-openapi/validate lists every problem)")
        for item in items.values():
            for operation in item.values():
                operation["x-wexec-error"] = note
    return items


def merge_patch(target: Any, patch: Any) -> Any:
    """JSON Merge Patch (RFC 7396): objects merge key by key, `null` removes a key, anything
    else replaces."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def problems(spec: dict[str, Any]) -> list[str]:
    """What makes `spec` an invalid OpenAPI 3.0 or 3.1 document, each with where it is."""
    version = str(spec.get("openapi", ""))
    if version.startswith("3.0."):
        validator: Any = OpenAPIV30SpecValidator(spec)
    elif version.startswith("3.1."):
        validator = OpenAPIV31SpecValidator(spec)
    else:
        return [f"openapi: {version or 'missing'}; this must be 3.0.x or 3.1.x"]
    found = []
    for error in validator.iter_errors():
        where = ".".join(str(p) for p in getattr(error, "absolute_path", ()))
        message = str(error.message).split("\n\n")[0]
        if len(message) > 300:
            message = message[:300] + "…"
        found.append(f"{where or '(document)'}: {message}")
    return found


def _operation(doc: ScriptDoc, method: str, route_path: str) -> dict[str, Any]:
    magic = doc.magic
    operation: dict[str, Any] = {
        "operationId": f"{method}_{_identifier(route_path)}",
        "summary": (magic.label if magic and magic.label else None) or doc.path,
        "responses": {
            "200": {"description": "The script's answer.",
                    "content": {"application/json": {"schema": doc.types.get("ResponseBody",
                                                                             {})}}},
            "500": {"description": "The script failed (message, script, line and column).",
                    "content": {"application/json": {"schema": _ERROR}}},
        },
        "x-wexec-script": doc.path,
    }
    if magic is not None:
        if magic.description:
            operation["description"] = magic.description
        if magic.tags:
            operation["tags"] = list(magic.tags)
        operation["x-wexec-mode"] = magic.mode
        if magic.token is not None:
            operation["security"] = [{"token": []}]
            operation["responses"]["401"] = {
                "description": "No token, or the wrong one.",
                "content": {"application/json": {"schema": _ERROR}}}
    if doc.magic_error is not None:
        operation["x-wexec-error"] = doc.magic_error
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"},
                   "description": _path_description(doc.route, name)}
                  for name in re.findall(r"{(\w+)}", route_path)]
    query = doc.types.get("Query", {})
    required = set(query.get("required", []))
    for name, schema in query.get("properties", {}).items():
        parameters.append({"name": name, "in": "query", "required": name in required,
                           "schema": schema})
    if parameters:
        operation["parameters"] = parameters
    if method in ("post", "put", "patch") and "RequestBody" in doc.types:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": doc.types["RequestBody"]}}}
    return operation


def _path_description(route: Route, name: str) -> str:
    kind = next(s.kind for s in route.segments if s.value == name)
    if kind == DYNAMIC:
        return f"metadata.parameters.{name}"
    return (f"one or more path segments, as the array metadata.parameters.{name}; '/' between "
            "segments is part of the value")


def _identifier(route_path: str) -> str:
    return "_".join(re.findall(r"\w+", route_path)) or "index"


def folder_names(folder: str) -> str:
    """`folder` as the file layer names it (refused by its form if it leaves the tenant)."""
    return "/".join(parts(folder))
