"""The management API app: every namespace's router, one JSON error shape, generated OpenAPI.

FastAPI, mounted by `runtime.app.App` under `/api/v1/exec`: request and response models are
pydantic, as elsewhere in wexec, and the OpenAPI 3.1 document (`/api/v1/exec/openapi.json`, and
`openapi.yaml`) is generated from them, with interactive docs at `/api/v1/exec/docs`. Scripts
never pass through it.
"""

from __future__ import annotations

import yaml
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from runtime.api import (
    cache,
    dependencies,
    errors,
    health,
    logs,
    magic_comments,
    monitor,
    package,
    routing,
    schedules,
    scripts,
    sdk,
    shared_state,
    system,
    templates,
    typings,
    user_openapi,
    validate,
)
from runtime.api.access import Gatekeeper, Guard
from runtime.api.deps import authorize
from runtime.api.services import Services

PUBLIC: list[APIRouter] = [health.router, typings.router]
"""Routers anyone may call: they tell whether the process is up, nothing about any tenant."""
DESCRIBING = frozenset({"/openapi.json", "/openapi.yaml", "/docs", "/docs/oauth2-redirect"})
"""The API's own description, open like the public routers."""
ROUTERS: list[APIRouter] = [
    scripts.router, validate.router, magic_comments.router, routing.router, cache.router,
    system.router, templates.router, user_openapi.router, shared_state.router,
    logs.router, monitor.router, schedules.router,
    dependencies.router, package.router, sdk.router,
]
"""One router per namespace module, each behind `deps.authorize`; a new namespace adds its
router here."""

DESCRIPTION = """\
Manage a wexec server: write and validate scripts, read their magic comments, resolve routes,
clear caches, restart. Paths, parameters, body fields, defaults and response fields follow the
reference product's `exec` API; where it says nothing, an endpoint's description says what
wexec chose.

**Who may call it.** `WEXEC_API_TOKEN`, sent as `Authorization: Bearer <token>`, grants every
tenant. A tenant's own API token (`WEXEC_API_TENANT_TOKENS`, stored hashed) grants that tenant
only: naming another one with `execId`/`subdomain` is a 403. With no token configured the API
answers only loopback clients on a loopback bind. `health`, this document and `docs` are open.

**Which tenant.** Every endpoint takes `execId` (or `exec_id`) and `subdomain`, in the query or
the body; the query wins. Naming neither means the tenant of a tenant token, else the Host
header's tenant (as for scripts). Every error is JSON: `{"error": code, "message": text, ...}`.
"""


def build(services: Services) -> ASGIApp:
    """The API app for this process's `services`; built once, by the lifespan."""
    api = FastAPI(
        title="wexec management API",
        version=health.version(),
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        exception_handlers=errors.HANDLERS,
    )
    api.state.services = services
    for router in PUBLIC:
        api.include_router(router)
    for router in ROUTERS:
        api.include_router(router, dependencies=[Depends(authorize)], responses=errors.RESPONSES)

    @api.get("/openapi.yaml", include_in_schema=False)
    async def openapi_yaml(_: Request) -> Response:
        text = yaml.safe_dump(api.openapi(), sort_keys=False, allow_unicode=True)
        return Response(text, media_type="application/yaml")

    public = DESCRIBING | {route.path for router in PUBLIC for route in router.routes
                           if isinstance(route, APIRoute)}
    return Guard(api, Gatekeeper(services.settings), services.settings.max_body_bytes, public)
