"""`/api/v1/exec/monitor/*`: what the server is doing and how each script performs.

Figures are this process's (`observe.metrics.Metrics`): under `--workers N` each answer says
which process gave it (`pid`), and `monitor/metrics` is the one view summed over every process.
A tenant sees its own scripts and requests only; `monitor/metrics` is the operator's scrape of
every tenant.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from runtime.api.deps import ServicesDep, TenantFields, TenantQuery, access_of, tenant_of
from runtime.api.services import Services
from runtime.observe.metrics import ScriptFigures

SortKey = Literal["lastActivity", "requests", "errors", "errorRate", "meanMs", "p95Ms",
                  "coldStarts", "memoryPeakBytes"]


class RequestFigures(BaseModel):
    total: int = Field(description="Requests to the tenant's scripts answered by this process.")
    errors: int = Field(description="Of those, answered with a 5xx status.")
    errorRate: float
    active: int = Field(description="The tenant's requests in progress now.")


class Stats(BaseModel):
    uptime: float = Field(description="Seconds since this process started serving.")
    startedAt: str
    pid: int = Field(description="The process that answered (figures are per process).")
    workers: int = Field(description="Server processes (`--workers`).")
    requests: RequestFigures
    websocket: dict[str, Any] = Field(description="The tenant's open WebSocket connections in this process.")
    cron: dict[str, Any] = Field(
        description="@schedule figures of this process: registered, fired, skipped (a run was "
                    "still going), failed, missed (ticks found missed at start-up).")
    cache: dict[str, int] = Field(
        description="What the sandbox holds: worker instances, serverless images and their "
        "bytes, scripts that run on guest threads only (slow)."
    )
    inflight: int = Field(description="Requests in progress in this process, every tenant.")


class ActiveRequest(BaseModel):
    id: str = Field(description="The request id its log line will carry.")
    script: str
    method: str
    path: str
    start: str = Field(description="When it started (ISO 8601, UTC).")
    elapsedMs: float


class ActiveRequests(BaseModel):
    requests: list[ActiveRequest]
    count: int
    pid: int


class ScriptSummary(BaseModel):
    script: str
    requests: int
    errors: int
    errorRate: float
    meanMs: float
    p95Ms: float | None
    coldStarts: int
    memoryPeakBytes: int
    lastActivity: str


class ScriptList(BaseModel):
    scripts: list[ScriptSummary]
    count: int = Field(description="Scripts with figures, before `limit`.")
    limit: int = Field(description="`limit` as applied, clamped to [1, 500].")
    sort: SortKey
    pid: int


class PerformanceBody(TenantFields):
    script: str | None = Field(None, description="Only this script (its path in the tenant).")


class ScriptPerformance(BaseModel):
    script: str
    count: int
    errors: int
    errorRate: float
    p50Ms: float | None
    p95Ms: float | None
    p99Ms: float | None = Field(description="Percentiles of the latest 1,024 requests' latency.")
    meanMs: float
    meanSandboxMs: float = Field(description="Mean time inside the sandbox (the script's run).")
    coldStarts: int = Field(description="Requests that ran the script's top level: a worker's "
                            "load, or a serverless run with no image to start from.")
    warmStarts: int
    memoryPeakBytes: int = Field(description="Highest linear memory an instance of the script "
                                 "had at the end of a request.")


class PerformanceAnswer(BaseModel):
    scripts: list[ScriptPerformance]
    count: int
    pid: int


router = APIRouter(prefix="/monitor", tags=["monitor"])


@router.get("/stats", summary="Get Stats")
async def stats(
    request: Request, services: ServicesDep,
    execId: TenantQuery = None, exec_id: TenantQuery = None, subdomain: TenantQuery = None,
) -> Stats:
    """A snapshot of this process and of the tenant's requests in it.

    Differences from the reference: figures are the answering process's (`pid`; under
    `--workers N` each has its own) and `requests` counts the tenant's scripts only;
    `websocket` counts the tenant's open sockets and `cron` this process's @schedule runs."""
    tenant = tenant_of(request, services.catalog)
    metrics = services.metrics
    mine = [f for f in metrics.scripts.values() if f.tenant == tenant.name]
    total = sum(f.count for f in mine)
    errors = sum(f.errors for f in mine)
    return Stats(
        uptime=round(time.time() - metrics.started, 3),
        startedAt=_iso(metrics.started), pid=os.getpid(), workers=services.settings.workers,
        requests=RequestFigures(
            total=total, errors=errors, errorRate=_rate(errors, total),
            active=sum(1 for a in metrics.active.values() if a.tenant == tenant.name),
        ),
        websocket={"supported": True,
                   "connections": services.sandbox.sockets.connections(tenant.name)},
        cron={"supported": True, **asdict(services.schedules.figures())},
        cache=_cache(services.sandbox.figures()),
        inflight=services.shedder.inflight,
    )


@router.get("/active-requests", summary="Get Active Requests")
async def active_requests(
    request: Request, services: ServicesDep,
    execId: TenantQuery = None, exec_id: TenantQuery = None, subdomain: TenantQuery = None,
) -> ActiveRequests:
    """The tenant's requests in progress in this process, oldest first.

    Differences from the reference: HTTP requests of the tenant, in the answering process."""
    tenant = tenant_of(request, services.catalog)
    metrics = services.metrics
    now = time.perf_counter_ns()
    found = [
        ActiveRequest(id=metrics.request_id(n), script=a.script, method=a.method, path=a.path,
                      start=_iso(a.started_ns / 1e9), elapsedMs=round((now - a.t0_ns) / 1e6, 3))
        for n, a in list(metrics.active.items()) if a.tenant == tenant.name
    ]
    return ActiveRequests(requests=found, count=len(found), pid=os.getpid())


@router.get("/scripts", summary="List Monitor Scripts")
async def scripts(
    request: Request, services: ServicesDep,
    limit: Annotated[int, Query(description="Most scripts answered; clamped to [1, 500].")
                     ] = 100,
    sort: Annotated[SortKey, Query(description="`lastActivity` (default): most recent first; "
                                   "any other key: highest first.")] = "lastActivity",
    execId: TenantQuery = None, exec_id: TenantQuery = None, subdomain: TenantQuery = None,
) -> ScriptList:
    """The tenant's scripts that served requests in this process, with their figures.

    Differences from the reference: the sort keys are the answer's own field names."""
    tenant = tenant_of(request, services.catalog)
    limit = min(max(limit, 1), 500)
    rows = [_summary(f) for f in _figures(services, tenant.name)]
    rows.sort(key=lambda row: (getattr(row, sort) is not None, getattr(row, sort)), reverse=True)
    return ScriptList(scripts=rows[:limit], count=len(rows), limit=limit, sort=sort,
                      pid=os.getpid())


@router.post("/script-performance", summary="Get Script Performance")
async def script_performance(
    request: Request, services: ServicesDep, body: PerformanceBody | None = None,
    execId: TenantQuery = None, exec_id: TenantQuery = None, subdomain: TenantQuery = None,
) -> PerformanceAnswer:
    """Latency percentiles, error rate, time in the sandbox, cold and warm starts and memory,
    per script of the tenant, busiest first.

    Differences from the reference: the body (any object in the reference) may name one
    `script`, and the tenant as every endpoint does; figures are the answering process's."""
    body = body or PerformanceBody()
    tenant = tenant_of(request, services.catalog, body)
    rows = [_performance(f) for f in _figures(services, tenant.name)
            if body.script is None or f.script == body.script]
    rows.sort(key=lambda row: row.count, reverse=True)
    return PerformanceAnswer(scripts=rows, count=len(rows), pid=os.getpid())


@router.get("/metrics", summary="Prometheus Export", response_class=Response, responses={
    200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition."}})
async def prometheus(request: Request, services: ServicesDep) -> Response:
    """Every tenant's series, summed over the server's processes (`wexec_requests_total`,
    `wexec_request_duration_seconds`, `wexec_cold_starts_total`). It names every tenant, so it
    needs WEXEC_API_TOKEN (or a loopback caller when no token is configured)."""
    access_of(request).check_all("monitor/metrics")
    body, content_type = services.metrics.scrape()
    return Response(body, media_type=content_type)


def _figures(services: Services, tenant: str) -> list[ScriptFigures]:
    return [f for f in list(services.metrics.scripts.values()) if f.tenant == tenant and f.script]


def _summary(f: ScriptFigures) -> ScriptSummary:
    return ScriptSummary(
        script=f.script, requests=f.count, errors=f.errors, errorRate=_rate(f.errors, f.count),
        meanMs=_mean(f.total_ms, f.count), p95Ms=_ms(f.percentile(0.95)), coldStarts=f.cold,
        memoryPeakBytes=f.memory_peak, lastActivity=_iso(f.last_activity),
    )


def _performance(f: ScriptFigures) -> ScriptPerformance:
    return ScriptPerformance(
        script=f.script, count=f.count, errors=f.errors, errorRate=_rate(f.errors, f.count),
        p50Ms=_ms(f.percentile(0.5)), p95Ms=_ms(f.percentile(0.95)),
        p99Ms=_ms(f.percentile(0.99)), meanMs=_mean(f.total_ms, f.count),
        meanSandboxMs=_mean(f.sandbox_ms, f.count), coldStarts=f.cold,
        warmStarts=f.count - f.cold, memoryPeakBytes=f.memory_peak,
    )


def _cache(figures: dict[str, int]) -> dict[str, int]:
    return {"workerInstances": figures["workers"], "serverlessImages": figures["images"],
            "serverlessImageBytes": figures["image_bytes"], "slowScripts": figures["slow_scripts"]}


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _mean(total: float, count: int) -> float:
    return round(total / count, 3) if count else 0.0


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
