"""`GET /api/v1/exec/health`: is this process up and serving, and how much is it holding."""

from __future__ import annotations

import time
from importlib.metadata import PackageNotFoundError, version

from starlette.requests import Request
from starlette.responses import JSONResponse

STARTED = time.monotonic()


def _version() -> str:
    try:
        return version("wexec")
    except PackageNotFoundError:
        return "unknown"


async def health(request: Request) -> JSONResponse:
    state = request.app.state
    view = state.catalog.view
    return JSONResponse({
        "status": "ok",
        "version": _version(),
        "uptime_s": round(time.monotonic() - STARTED, 3),
        "tenants": len(view.tenants),
        "scripts": sum(len(t.scripts) for t in view.tenants.values()),
        "inflight": state.shedder.inflight,
    })
