"""`route/*`: which script answers a URL, every route a tenant serves, and why a URL matches.

All three read the live route table the gateway uses (`catalog.routes.RouteTable`), so they
answer what a request would get now: static segments beat dynamic ones, which beat catch-alls,
segment by segment.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from runtime.api.deps import ServicesDep, TenantFields, TenantQuery, tenant_of
from runtime.api.scripts import summary
from runtime.api.services import Services
from runtime.catalog.live import Script, TenantScripts
from runtime.catalog.routes import (
    CATCH_ALL,
    DYNAMIC,
    OPTIONAL_CATCH_ALL,
    STATIC,
    Route,
    RouteError,
    route_for,
    split_path,
)
from runtime.catalog.tenants import Tenant
from runtime.http.errors import HTTPError
from runtime.http.policy import Policy
from runtime.types import Query

RESERVED = "/api/v1/exec/"
Kind = Literal["static", "dynamic", "catch-all", "optional-catch-all"]
KINDS: dict[int, Kind] = {STATIC: "static", DYNAMIC: "dynamic", CATCH_ALL: "catch-all",
         OPTIONAL_CATCH_ALL: "optional-catch-all"}


class ResolveBody(TenantFields):
    path: str = Field(description="URL path (a query string is ignored), e.g. /api/users/42.")
    method: str | None = Field(None, description="Echoed back: a script answers every method "
                               "and branches on it itself.")


class Resolved(BaseModel):
    matched: bool
    path: str
    method: str | None
    script: str | None = Field(description="The file that answers, relative to the tenant.")
    route: str | None = Field(description="Its pattern, e.g. /api/users/[id].")
    params: Query = Field(description="Route parameters (catch-alls as lists).")
    reason: str | None = Field(None, description="Why nothing answers (404), or why the "
                               "script that matches fails.")


class DiscoverBody(TenantFields):
    baseDir: str = Field("", description="Only scripts under this folder.")
    includeMetadata: bool = False


class RouteInfo(BaseModel):
    route: str
    script: str
    type: Kind = Field(
        description="Its most general segment.")
    params: list[str]
    served: bool = Field(description="It compiled and is enabled: requests run it.")
    metadata: dict[str, Any] | None = None
    error: str | None = None


class Discovered(BaseModel):
    routes: list[RouteInfo] = Field(description="In precedence order: the first that matches "
                                    "a URL answers it.")
    count: int


class TestBody(TenantFields):
    path: str | None = Field(None, description="URL or path to test.")
    url: str | None = Field(None, description="Alias of path.")
    pattern: str | None = Field(None, description="A route pattern (/api/users/[id]) to test "
                                "against; without it, the tenant's route table.")


class Candidate(BaseModel):
    route: str
    script: str | None
    matched: bool
    params: Query
    explanation: list[str] = Field(description="Segment by segment.")


class Tested(BaseModel):
    path: str
    matched: bool
    route: str | None
    script: str | None
    params: Query
    candidates: list[Candidate] = Field(description="Every route considered, in precedence "
                                        "order; the first matched one answers.")


router = APIRouter(prefix="/route", tags=["route"])


@router.post("/resolve", summary="Resolve Route")
async def resolve(request: Request, body: ResolveBody, services: ServicesDep,
                  execId: TenantQuery = None, exec_id: TenantQuery = None,
                  subdomain: TenantQuery = None) -> Resolved:
    """The script a request to `path` runs now, and its route parameters."""
    tenant = tenant_of(request, services.catalog, body)
    path = _path(body.path)
    answer = Resolved(matched=False, path=path, method=body.method, script=None, route=None,
                      params={})
    if path.startswith(RESERVED):
        answer.reason = f"{RESERVED} is the management API's; no script is served under it"
        return answer
    hit = _table(services, tenant)
    found = hit.table.match(path) if hit is not None else None
    if found is None or hit is None:
        answer.reason = f"no script serves {path} in tenant {tenant.name}"
        return answer
    route, params = found
    script = hit.scripts[route.rel]
    answer.script, answer.route, answer.params = route.rel, route.pattern, params
    answer.matched, answer.reason = _serves(script)
    return answer


@router.post("/discover", summary="Discover Routes")
async def discover(request: Request, services: ServicesDep, body: DiscoverBody | None = None,
                   execId: TenantQuery = None, exec_id: TenantQuery = None,
                   subdomain: TenantQuery = None) -> Discovered:
    """Every route the tenant serves, in precedence order; `includeMetadata` adds each
    script's magic-comment summary (mode, enabled, description, label, tags...)."""
    body = body or DiscoverBody()
    tenant = tenant_of(request, services.catalog, body)
    hit = _table(services, tenant)
    base = "/".join(n for n in body.baseDir.split("/") if n not in ("", "."))
    routes = []
    for route in hit.table.routes if hit is not None else []:
        if base and not route.rel.startswith(base + "/"):
            continue
        script = hit.scripts[route.rel] if hit is not None else None
        assert script is not None
        served, reason = _serves(script)
        info = RouteInfo(route=route.pattern, script=route.rel, type=_kind(route),
                         params=[s.value for s in route.segments if s.kind != STATIC],
                         served=served, error=reason)
        if body.includeMetadata and script.artefact is not None:
            info.metadata = summary(script.artefact.magic)
        routes.append(info)
    return Discovered(routes=routes, count=len(routes))


@router.post("/test", summary="Test Route")
async def test(request: Request, body: TestBody, services: ServicesDep,
               execId: TenantQuery = None, exec_id: TenantQuery = None,
               subdomain: TenantQuery = None) -> Tested:
    """Match a URL against one pattern, or against the tenant's table, explaining each
    route segment by segment."""
    tenant = tenant_of(request, services.catalog, body)
    given = body.path or body.url
    if not given:
        raise HTTPError(400, "invalid_request", "give the URL to test as path (or url)")
    path = _path(given)
    parts = split_path(path)
    if body.pattern is not None:
        routes: list[tuple[Route, Script[Policy] | None]] = [(_pattern(body.pattern), None)]
    else:
        hit = _table(services, tenant)
        routes = [(r, hit.scripts[r.rel]) for r in hit.table.routes] if hit is not None else []
    candidates = []
    for route, script in routes:
        params = route.match(parts)
        candidates.append(Candidate(
            route=route.pattern, script=route.rel if script is not None else None,
            matched=params is not None, params=params or {},
            explanation=_explain(route, parts)))
    winner = next((c for c in candidates if c.matched), None)
    return Tested(path=path, matched=winner is not None,
                  route=winner.route if winner else None, script=winner.script if winner else None,
                  params=winner.params if winner else {}, candidates=candidates)


def _table(services: Services, tenant: Tenant) -> TenantScripts[Policy] | None:
    return services.catalog.view.tenants.get(tenant.name)


def _path(given: str) -> str:
    parts = urlsplit(given)
    path = parts.path if parts.scheme or given.startswith("/") else "/" + parts.path
    return path or "/"


def _serves(script: Script[Policy]) -> tuple[bool, str | None]:
    if script.artefact is None:
        return False, f"{script.route.rel} does not compile: {script.error}"
    if not script.artefact.magic.enabled:
        return False, f"{script.route.rel} is @enabled false: requests get a 404"
    return True, None


def _kind(route: Route) -> Kind:
    return KINDS[max((s.kind for s in route.segments), default=STATIC)]


def _pattern(pattern: str) -> Route:
    names = [n for n in pattern.split("?")[0].split("/") if n]
    try:
        return route_for("/".join(names or ["index"]) + ".ts")
    except RouteError as exc:
        message = str(exc).split(": ", 1)[-1]
        raise HTTPError(400, "invalid_pattern", f"pattern={pattern!r}: {message}",
                        pattern=pattern) from None


def _explain(route: Route, parts: list[str]) -> list[str]:
    said: list[str] = []
    for i, seg in enumerate(route.segments):
        if seg.kind == STATIC:
            if i >= len(parts):
                return [*said, f"segment {i + 1}: the path ends where '{seg.value}' is needed"]
            if parts[i] != seg.value:
                return [*said, f"segment {i + 1}: '{parts[i]}' is not '{seg.value}'"]
            said.append(f"segment {i + 1}: '{seg.value}' matches")
        elif seg.kind == DYNAMIC:
            if i >= len(parts):
                return [*said, f"segment {i + 1}: the path ends where [{seg.value}] needs one"]
            said.append(f"segment {i + 1}: [{seg.value}] takes '{parts[i]}'")
        else:
            rest = parts[i:]
            if seg.kind == CATCH_ALL and not rest:
                return [*said, f"segment {i + 1}: [...{seg.value}] needs at least one segment"]
            said.append(f"segments {i + 1}+: {KINDS[seg.kind]} {seg.value} takes "
                        f"{'/'.join(rest) or 'nothing'}")
            return said
    if len(parts) > len(route.segments):
        extra = "/".join(parts[len(route.segments):])
        return [*said, f"the path goes on ('{extra}') past the route's last segment"]
    return [*said, "every segment matches"]
