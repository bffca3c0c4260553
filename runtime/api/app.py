"""The management API app: every namespace's router, one JSON error shape, generated OpenAPI.

FastAPI, mounted by `runtime.app.App` under `/api/v1/exec`: request and response models are
pydantic, as elsewhere in wexec, and the OpenAPI document (`/api/v1/exec/openapi.json`) is
generated from them. Scripts never pass through it.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from runtime.api import errors, health, logs, monitor
from runtime.api.services import Services

ROUTERS: list[APIRouter] = [health.router, logs.router, monitor.router]
"""One router per namespace module; a new namespace adds its router here."""


def build(services: Services) -> FastAPI:
    """The API app for this process's `services`; built once, by the lifespan."""
    api = FastAPI(
        title="wexec management API",
        version=health.version(),
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        exception_handlers=errors.HANDLERS,
    )
    api.state.services = services
    for router in ROUTERS:
        api.include_router(router)
    return api
