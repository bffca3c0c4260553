"""`list` (the tenants' exec ids), `system/restart` and `system/restart-status`.

A restart is the supervisor's (`server.supervise`): this process waits for the script requests
in flight to finish (at most `drainTimeoutMs`), then asks the supervisor, which stops the server
gracefully and starts a new one at once. What was asked and how far it got is kept in
`{data}/restart.json`, so the new processes can answer `restart-status` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from runtime.api.deps import ServicesDep, access_of
from runtime.api.services import Services
from runtime.http.errors import HTTPError

log = logging.getLogger("wexec")
STARTED_AT = time.time()
"""When this process loaded the API (it does so while starting): a restart asked before it is
done."""
RESTART_SIGNAL = signal.SIGUSR2
"""What asks `wexec serve`'s supervisor for a restart."""


class Instance(BaseModel):
    execId: str
    subdomain: str
    name: str = Field(description="subdomain/execId.")
    scripts: int = Field(description="Routes it serves.")


class Instances(BaseModel):
    execIds: list[str] = Field(description="Every exec id served, once each, sorted.")
    instances: list[Instance] = Field(description="wexec addition: each tenant, by subdomain "
                                      "and exec id.")
    count: int


class RestartBody(BaseModel):
    graceful: bool = Field(True, description="Wait for the script requests in flight first.")
    drainTimeoutMs: int = Field(5000, ge=0, le=600_000, description="Longest wait for them.")
    reason: str = Field("API restart request", max_length=1000)


class RestartStatus(BaseModel):
    state: Literal["idle", "draining", "restarting", "completed"] = Field(
        description="idle: no restart asked since this server's data folder was made; "
        "draining/restarting: under way; completed: this process started after the last one.")
    requestedAt: str | None = None
    reason: str | None = None
    graceful: bool | None = None
    drainTimeoutMs: int | None = None
    drained: bool | None = Field(None, description="Every request in flight finished in time.")
    inflight: int = Field(description="Script requests in flight in this process now.")
    pid: int = Field(description="This process.")
    startedAt: str = Field(description="When this process started.")


router = APIRouter(tags=["system"])


@router.get("/list", summary="List All Exec Ids")
async def list_ids(request: Request, services: ServicesDep) -> Instances:
    """Every tenant this server serves (a tenant token sees only its own)."""
    access = access_of(request)
    view = services.catalog.view
    tenants = [t for t in view.resolver.tenants if access.tenant in (None, t.name)]
    instances = sorted(
        (Instance(execId=t.exec_id, subdomain=t.subdomain, name=t.name,
                  scripts=len(view.tenants[t.name].scripts) if t.name in view.tenants else 0)
         for t in tenants), key=lambda i: (i.subdomain, i.execId))
    return Instances(execIds=sorted({i.execId for i in instances}), instances=instances,
                     count=len(instances))


@router.post("/system/restart", summary="Restart Server", status_code=202)
async def restart(request: Request, services: ServicesDep, body: RestartBody | None = None
                  ) -> RestartStatus:
    """Restart every server process (all tenants: needs WEXEC_API_TOKEN). Answers 202 at
    once; the restart follows the drain. Only a server run by `wexec serve` (which supervises
    it) can be restarted; otherwise 409."""
    body = body or RestartBody()
    access_of(request).check_all("system/restart")
    supervisor = services.settings.supervisor_pid
    if supervisor is None:
        raise HTTPError(409, "not_supervised", "this server is not run by `wexec serve`'s "
                        "supervisor (WEXEC_RESTART_ON_CRASH=false, or another server), so "
                        "nothing would start it again; restart it the way it was started")
    current = _status(services)
    if current.state in ("draining", "restarting"):
        raise HTTPError(409, "restart_in_progress", f"a restart asked at {current.requestedAt} "
                        "is under way; follow it with GET system/restart-status")
    record = {"state": "draining", "requestedAt": time.time(), "reason": body.reason,
              "graceful": body.graceful, "drainTimeoutMs": body.drainTimeoutMs, "drained": None}
    _save(services, record)
    task = asyncio.create_task(_restart(services, supervisor, record))
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    return _status(services)


@router.get("/system/restart-status", summary="Get Restart Status")
async def restart_status(request: Request, services: ServicesDep) -> RestartStatus:
    """The last restart asked of this server, and whether this process came after it."""
    access_of(request).check_all("system/restart-status")
    return _status(services)


_RUNNING: set[asyncio.Task[None]] = set()


async def _restart(services: Services, supervisor: int, record: dict[str, object]) -> None:
    """Drain, record how it went, then ask the supervisor."""
    deadline = time.monotonic() + int(str(record["drainTimeoutMs"])) / 1000
    while record["graceful"] and services.shedder.inflight and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    record |= {"state": "restarting", "drained": services.shedder.inflight == 0}
    _save(services, record)
    log.warning("restarting on request (%s)", record["reason"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(supervisor, RESTART_SIGNAL)


def _file(services: Services) -> Path:
    return services.settings.data_dir / "restart.json"


def _save(services: Services, record: dict[str, object]) -> None:
    path = _file(services)
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".restart.{os.getpid()}.tmp")
    aside.write_text(json.dumps(record))
    aside.replace(path)


def _status(services: Services) -> RestartStatus:
    record: dict[str, object] = {}
    with contextlib.suppress(FileNotFoundError, ValueError):
        record = json.loads(_file(services).read_text())
    requested = record.get("requestedAt")
    state = str(record.get("state", "idle"))
    if isinstance(requested, (int, float)) and requested < STARTED_AT:
        state = "completed"
    return RestartStatus.model_validate({
        **record, "state": state, "requestedAt": _iso(requested),
        "inflight": services.shedder.inflight, "pid": os.getpid(), "startedAt": _iso(STARTED_AT),
    })


def _iso(seconds: object) -> str | None:
    if not isinstance(seconds, (int, float)):
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
