"""`GET /api/v1/exec/health`: is this process up and serving, and how much is it holding."""

from __future__ import annotations

import os
import time
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from runtime.api.deps import ServicesDep
from runtime.api.services import Services

STARTED = time.monotonic()


class Health(BaseModel):
    status: Literal["ok"]
    version: str = Field(description="The installed wexec package's version.")
    uptime_s: float = Field(description="Seconds since this process loaded the API.")
    tenants: int = Field(description="Tenants this process serves.")
    scripts: int = Field(description="Scripts routed across every tenant (broken ones included).")
    inflight: int = Field(description="Requests in progress in this process.")
    ready: bool = Field(description="Whether this process takes more requests now: the checks "
                        "below all pass.")
    checks: dict[str, str] = Field(description="Readiness, part by part: `ok`, or what is wrong.")


router = APIRouter(tags=["health"])


def version() -> str:
    """The installed package's version; a source tree that was never installed has none."""
    try:
        return package_version("wexec")
    except PackageNotFoundError:
        return "unknown"


@router.get("/health", summary="Is this process up and serving")
async def health(services: ServicesDep) -> Health:
    tenants = services.catalog.view.tenants
    checks = readiness(services)
    return Health(
        status="ok",
        version=version(),
        uptime_s=round(time.monotonic() - STARTED, 3),
        tenants=len(tenants),
        scripts=sum(len(t.scripts) for t in tenants.values()),
        inflight=services.shedder.inflight,
        ready=all(v == "ok" for v in checks.values()),
        checks=checks,
    )


def readiness(services: Services) -> dict[str, str]:
    """Each part a request needs, and whether it can serve one now."""
    settings, shedder = services.settings, services.shedder
    logs_dir = services.access_log.logs_dir
    logs = logs_dir if logs_dir.exists() else logs_dir.parent
    return {
        "scripts": "ok" if services.catalog.view.tenants else "no tenant is served",
        "capacity": "ok" if shedder.inflight < settings.max_inflight else
        f"{shedder.inflight} requests in progress, at WEXEC_MAX_INFLIGHT; new ones get a 503",
        "logs": "ok" if os.access(logs, os.W_OK) else f"{logs} is not writable: lines are lost",
    }
