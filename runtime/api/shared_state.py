"""`POST /api/v1/exec/shared-state/get|set|clear`: a tenant's `shared`, read and edited from outside.

The tenant is named by `hostname`, exactly as a Host header names it for scripts; `path` is a
dot-separated key path into its state (absent or empty: the whole state). What this changes is
what the tenant's scripts see at their next access in this process, and in the other server
processes within the state's sync interval (`runtime.state.store`).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import APIRouter
from pydantic import BaseModel, Field

from runtime.api.deps import ServicesDep
from runtime.api.services import Services
from runtime.host.shared import state_of
from runtime.http.errors import HTTPError
from runtime.state import StateError, StateFull


class StatePath(BaseModel):
    hostname: str = Field(description="Names the tenant as a Host header would "
                          "(e.g. alice-1.example.com); one naming no tenant is the default tenant.")
    path: str | None = Field(None, description="Dot-separated key path, e.g. users.alice; "
                             "absent or empty: the whole state.")


class SetState(StatePath):
    value: Any = Field(description="Arbitrary JSON value to store.")
    merge: bool = Field(False, description="Put an object's keys into the object already at "
                        "`path` (one level, as Object.assign does) instead of replacing it.")


class ClearState(StatePath):
    clearAll: bool = Field(False, description="Clear the whole state (when no `path` is given).")


class StateValue(BaseModel):
    hostname: str
    path: str
    value: Any = Field(description="The JSON at `path`; null when it holds nothing.")


class Cleared(BaseModel):
    hostname: str
    path: str
    cleared: bool = Field(description="Whether `path` (or the state) held anything.")


router = APIRouter(prefix="/shared-state", tags=["state"])


def _keys(path: str | None) -> list[str]:
    if not path:
        return []
    keys = path.split(".")
    if "" in keys:
        raise HTTPError(400, "invalid_path", f"path {path!r} has an empty key; write keys "
                        "separated by single dots, e.g. users.alice", path=path)
    return keys


def _tenant(services: Services, hostname: str) -> str:
    return services.catalog.view.resolver.resolve(hostname.lower()).name


def _value(services: Services, tenant: str, keys: list[str]) -> Any:
    raw = state_of(services.settings).snapshot(tenant, keys)
    return None if raw is None else orjson.loads(raw)


@router.post("/get", summary="Get Shared State")
async def get_state(body: StatePath, services: ServicesDep) -> StateValue:
    keys = _keys(body.path)
    value = _value(services, _tenant(services, body.hostname), keys)
    return StateValue(hostname=body.hostname, path=body.path or "", value=value)


@router.post("/set", summary="Set Shared State")
async def set_state(body: SetState, services: ServicesDep) -> StateValue:
    keys = _keys(body.path)
    tenant = _tenant(services, body.hostname)
    state = state_of(services.settings)
    try:
        state.set(tenant, keys, body.value, services.settings.shared_tenant_bytes,
                  merge=body.merge)
    except StateError as exc:
        status, code = (413, "state_full") if isinstance(exc, StateFull) else (400, "invalid_state")
        raise HTTPError(status, code, str(exc), hostname=body.hostname,
                        path=body.path or "") from None
    await asyncio.to_thread(state.sync)  # lasting, and seen by the other processes, at once
    return StateValue(hostname=body.hostname, path=body.path or "",
                      value=_value(services, tenant, keys))


@router.post("/clear", summary="Clear Shared State")
async def clear_state(body: ClearState, services: ServicesDep) -> Cleared:
    keys = _keys(body.path)
    if not keys and not body.clearAll:
        raise HTTPError(400, "invalid_request", "give the `path` to clear, or clearAll: true to "
                        "clear the whole state", hostname=body.hostname)
    state = state_of(services.settings)
    cleared = state.delete(_tenant(services, body.hostname), keys)
    await asyncio.to_thread(state.sync)
    return Cleared(hostname=body.hostname, path=body.path or "", cleared=cleared)
