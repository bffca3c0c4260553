"""The ASGI application: scripts at bare paths, the management API under `/api/v1/exec/`.

Server-agnostic: uvicorn, granian and hypercorn all run it. `App` owns the process's lifespan:
it builds the sandbox, the live catalog of scripts and its reload loop, the schedules, the
request logs and the management API (`runtime.api`), and releases them in reverse order at
shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.routing import Mount, Router
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from runtime.api.services import Services
from runtime.catalog.live import Catalog
from runtime.config import Settings
from runtime.host.fetch.client import close_clients
from runtime.http.gateway import Gateway
from runtime.http.limits import LoadShedder
from runtime.http.policy import Policy, policy_for
from runtime.http.response import ResponseRules
from runtime.observe import tracing
from runtime.observe.access_log import AccessLog
from runtime.observe.metrics import Metrics
from runtime.sandbox import Sandbox
from runtime.schedules import Scheduler

GC_YOUNG_THRESHOLD = 20_000
"""Net container allocations between young-generation collections (Python's default: 700)."""
API_PREFIX = "/api/v1/exec/"
"""Reserved for wexec itself: no script is ever served under it."""

log = logging.getLogger("wexec")


class App:
    """Dispatches each request to the script gateway or the management API.

    Scripts bypass Starlette's router and middleware: their path is the hot one, and the gateway
    already answers every error itself. Everything else (the API, the lifespan protocol) goes
    through one router that mounts the API app under `API_PREFIX`.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._gateway: Gateway | None = None
        self._api: asyncio.Task[ASGIApp] | None = None
        self.schedules: Scheduler | None = None  # built by the lifespan
        self._router = Router(
            routes=[Mount(API_PREFIX.rstrip("/"), app=self._serve_api)], lifespan=self._lifespan
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(API_PREFIX):
            if self._gateway is None:
                await _not_started(send)
                return
            await self._gateway(scope, receive, send)
        elif scope["type"] == "websocket" and not scope["path"].startswith(API_PREFIX):
            if self._gateway is None:
                await WebSocketClose(1013)(scope, receive, send)
                return
            await self._gateway.websocket(scope, receive, send)
        else:
            await self._router(scope, receive, send)

    async def _serve_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._api is None:
            if scope["type"] == "http":
                await _api_not_started(scope, send)
            else:
                await WebSocketClose()(scope, receive, send)
            return
        api = await self._api  # built by now, except for the first requests after start-up
        await api(scope, receive, send)

    @asynccontextmanager
    async def _lifespan(self, _: object) -> AsyncIterator[None]:
        settings = self.settings
        sandbox = Sandbox(settings)
        access_log = AccessLog(
            settings.data_dir / "logs", settings.log_rotate_bytes, settings.tenant_log_disk_bytes
        )
        metrics = Metrics(settings.metrics)
        tracing.configure(settings.tracing)
        shedder = LoadShedder(settings.max_inflight)
        catalog: Catalog[Policy] = Catalog(
            settings,
            tracing.traced_compile(sandbox.compiler.compile_file),
            lambda tenant, rel, artefact: policy_for(tenant, rel, artefact, settings),
        )
        await asyncio.to_thread(catalog.refresh, initial=True)
        sandbox.registry.services.catalog = catalog  # fs refreshes it when it writes a script
        rules = ResponseRules(settings.max_response_headers, settings.max_response_header_bytes)
        self._gateway = Gateway(
            catalog, sandbox, access_log, settings.max_body_bytes, shedder, rules, metrics
        )
        host = sandbox.registry.services  # what a relative fetch goes through
        host.dispatch, host.inline, host.claim = (
            self._gateway.dispatch, self._gateway.inline, self._gateway.claim
        )
        reloader = asyncio.create_task(_keep_current(catalog, sandbox, settings.reload_interval_ms))
        schedules = Scheduler(catalog, self._gateway, settings.data_dir)
        await asyncio.to_thread(schedules.start)
        self.schedules = schedules
        scheduling = asyncio.create_task(schedules.serve())
        _freeze_heap()
        # FastAPI takes about a quarter of a second to import, five times the rest of start-up:
        # the API is built on a thread while scripts are already served, and a management
        # request arriving meanwhile waits for it. What it builds is frozen too, once built.
        services = Services(settings, catalog, sandbox, shedder, access_log, metrics, schedules)
        self._api = asyncio.create_task(asyncio.to_thread(_build_api, services))
        self._api.add_done_callback(lambda _: _freeze_heap())
        if settings.supervisor_pid is not None:  # `wexec serve` restarts only what has started
            with contextlib.suppress(ProcessLookupError):
                os.kill(settings.supervisor_pid, signal.SIGUSR1)
        try:
            yield
        finally:
            reloader.cancel()
            scheduling.cancel()
            await asyncio.gather(reloader, scheduling, self._api, return_exceptions=True)
            await schedules.close()
            self._gateway = self._api = None
            access_log.close()
            await close_clients()
            metrics.close()
            tracing.shutdown()
            sandbox.close()


def _freeze_heap() -> None:
    """Keep what start-up built out of the collector's walks, for the process's life.

    A full collection then costs what requests left behind, not the whole heap: the management
    API alone is hundreds of thousands of objects, and walking them stalled every request in
    flight for tens of milliseconds (a p99 spike). Requests free nearly everything they allocate
    by reference counting, so the young generation is collected far less often than Python's
    default of every 700 objects."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _build_api(services: Services) -> ASGIApp:
    """The management API app; imported here, on the thread that builds it, so that importing
    `runtime.app` does not load FastAPI."""
    from runtime.api.app import build

    return build(services)


async def _api_not_started(scope: Scope, send: Send) -> None:
    """The management API's answer while it does not exist: before the lifespan built it, or
    after it ended (the same JSON 500 a failing handler gives)."""
    method, path = scope.get("method", "GET"), scope["path"]
    body = json.dumps({
        "error": "internal_error", "path": path,
        "message": f"wexec failed to serve {method} {path}: the management API is built at "
                   "start-up, and this process has not started (or is stopping), or its ASGI "
                   "server did not run the lifespan protocol",
    }).encode()
    await send({"type": "http.response.start", "status": 500, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
    ]})
    await send({"type": "http.response.body", "body": body})


async def _not_started(send: Send) -> None:
    """The answer while no gateway exists: the server did not run the lifespan protocol, or
    the process is starting or stopping."""
    body = (b'{"error":"not_ready","message":"wexec is not serving scripts in this process: it is '
            b'starting or stopping, or its ASGI server did not run the lifespan protocol"}')
    await send({"type": "http.response.start", "status": 503, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
        (b"retry-after", b"1"),
    ]})
    await send({"type": "http.response.body", "body": body})


async def _keep_current(catalog: Catalog[Policy], sandbox: Sandbox, interval_ms: int) -> None:
    """Re-scan scripts forever; drop the worker instances of versions nobody serves any more."""
    while True:
        await asyncio.sleep(interval_ms / 1000)
        try:
            retired = await asyncio.to_thread(catalog.refresh)
        except Exception:  # a failed scan must not stop hot reload for good
            log.exception("re-scanning scripts failed")
            continue
        for key in retired:
            sandbox.evict(key)


def create_app(settings: Settings | None = None) -> App:
    """The application for `settings` (default: read from `WEXEC_*` environment variables).

    Servers that start worker processes import this factory by name, so each process builds
    its own app from the environment `wexec serve` exported.
    """
    return App(settings if settings is not None else Settings())
