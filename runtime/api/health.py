"""`GET /api/v1/exec/health`: is this process up and serving, and how much is it holding."""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from runtime.api.deps import ServicesDep

STARTED = time.monotonic()


class Health(BaseModel):
    status: Literal["ok"]
    version: str = Field(description="The installed wexec package's version.")
    uptime_s: float = Field(description="Seconds since this process loaded the API.")
    tenants: int = Field(description="Tenants this process serves.")
    scripts: int = Field(description="Scripts routed across every tenant (broken ones included).")
    inflight: int = Field(description="Requests in progress in this process.")


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
    return Health(
        status="ok",
        version=version(),
        uptime_s=round(time.monotonic() - STARTED, 3),
        tenants=len(tenants),
        scripts=sum(len(t.scripts) for t in tenants.values()),
        inflight=services.shedder.inflight,
    )
