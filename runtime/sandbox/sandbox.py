"""``Sandbox``: compiled scripts in, responses out, every run inside its own wasm store.

Worker scripts keep one instance (globals persist, requests interleave at ``await``); serverless
scripts get a fresh store from the snapshot for every request and it is dropped afterwards.
A serverless script whose top level is pure starts its fresh instances from the memory that
top level left (``images.py``).
Guest code that may run long goes to the guest threads (``threads.py``: ctypes releases the GIL
while wasm runs, and each tenant gets its fair share of them), so a busy script costs a thread,
not the event loop. A hop to a thread costs more than a whole serverless request, so a
serverless request first runs on the event loop within a short slice (``inline_budget_ms``); if
it outruns the slice it is discarded and rerun from scratch on a thread — safe, since nothing
it did is visible yet: its operations only start once the crossing is over, and a host call
that would change host state in it (a shared state write) stops it to be rerun the same way
(``host.Crossing``) — and the script goes to the threads for a while
(``SlowScripts``: a slice is wall time, which a preempted process also loses). A worker's
requests always run on the threads: a worker request cannot be rerun (it may have changed the
instance), so it is never stopped for a scheduling decision; the requests that arrive while one
crossing runs share the next (``Driver.request``), which makes the hop cheap under load.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from runtime.config import Settings
from runtime.host import Caller, Grants, Unit
from runtime.host.quotas import Limits, Quotas
from runtime.host.registry import UNITS, Registry
from runtime.host.websocket import Connection, Hub
from runtime.observe import tracing
from runtime.sandbox.driver import Driver, SliceExceeded
from runtime.sandbox.engine import GuestEngine
from runtime.sandbox.envelope import FIRST_RID, answered, first_envelope
from runtime.sandbox.images import ImageCache
from runtime.sandbox.instance import GuestInstance
from runtime.sandbox.memory import DerivedImage
from runtime.sandbox.threads import GuestThreads
from runtime.sandbox.types import Invocation, LogRecord, Result
from runtime.sandbox.worker import WorkerDriver
from runtime.types import DEFAULT_TENANT

if TYPE_CHECKING:
    from runtime.compiler import Artefact, Compiler

T = TypeVar("T")
D = TypeVar("D", bound=Driver)
_SCRIPT_DEFAULT: Any = object()


OWN_GRANTS_KEPT = 1024
"""Script versions whose grants are kept for callers that bring none (the CLI, benches)."""


class Sandbox:
    """One per process: the guest engine, the compiler bound to it, and the worker instances."""

    def __init__(self, settings: Settings, units: tuple[Unit, ...] = UNITS) -> None:
        """``units``: the host capabilities its scripts may be granted (``host.registry``)."""
        self.settings = settings
        self.registry = Registry(settings, units)
        self.registry.services.sandbox = self
        self.engine = GuestEngine(settings, self.registry)
        self._workers: dict[str, WorkerDriver] = {}
        self.sockets = Hub(settings)  # worker scripts' WebSocket connections and rooms
        # serverless scripts by key: their artefact and its image (None: its top level is not pure)
        self.images = ImageCache(settings.serverless_images, settings.serverless_image_bytes)
        self._slow = SlowScripts()
        self._own_grants: dict[tuple[str, str], Grants] = {}  # (tenant, artefact key) → grants
        self.threads = GuestThreads(settings.guest_threads, settings.tenant_guest_threads)
        self.quotas = Quotas(Limits.of(settings))  # what each tenant's scripts hold of the host
        self._compile_lock = threading.Lock()
        self._compile_instance: GuestInstance | None = None
        self._compiler: Compiler | None = None

    @property
    def compiler(self) -> Compiler:
        if self._compiler is None:
            from runtime.compiler import Compiler

            self._compiler = Compiler(
                self.settings.cache_dir, self.engine.guest_hash, self.to_bytecode
            )
        return self._compiler

    def to_bytecode(self, js: str, filename: str) -> bytes:
        """Compile JS text to QuickJS bytecode inside the guest (thread-safe)."""
        from runtime.compiler import CompileError

        with self._compile_lock:
            if self._compile_instance is None:
                self._compile_instance = GuestInstance(self.engine, self.settings.memory_limit)
            head, blob = self._compile_instance.cross(
                b"wx_compile", orjson.dumps({"filename": filename}), js.encode(), 10_000
            )
        out = orjson.loads(head)
        if "error" in out:
            e = out["error"]
            raise CompileError(
                f"{e.get('name', 'SyntaxError')}: {e.get('message', '')}",
                filename,
                e.get("line"),
                e.get("col"),
            )
        ref = out["bytecode"]
        return blob[ref["off"] : ref["off"] + ref["len"]]

    def timeout_for(self, artefact: Artefact, tenant: str | None = None) -> int | None:
        """The script's ``@timeout`` (or the default), capped by settings and the tenant's cap;
        None is unlimited."""
        return self.settings.effective_timeout(artefact.magic.timeout, tenant)

    def invoke(
        self,
        artefact: Artefact,
        inv: Invocation,
        *,
        timeout_ms: int | None = _SCRIPT_DEFAULT,
        tenant: str = DEFAULT_TENANT,
        grants: Grants | None = None,
    ) -> Coroutine[Any, Any, Result]:
        """Run ``artefact`` for one request, in its worker instance or a fresh one.

        ``tenant`` is who the host capabilities act for, with the version's ``grants``
        (``Policy.grants``; None: derived from its magic comments on its first op). Worker instances are cached by
        ``artefact.key``, so a key must be unique per tenant and script (the catalog's are).
        A streamed result returns at its head; a fresh instance lives until its stream ends.
        A plain function handing back the mode's coroutine: one coroutine less to resume on
        every request.
        """
        if inv.begun is not None:  # started inside its caller's crossing (``nested``)
            driver, req = inv.begun
            return driver.follow(req)  # type: ignore[no-any-return]
        if timeout_ms is _SCRIPT_DEFAULT:
            timeout_ms = self.timeout_for(artefact, tenant)
        if artefact.magic.mode == "worker":
            return self._invoke_worker(artefact, inv, timeout_ms, tenant, grants)
        return self._invoke_fresh(artefact, inv, timeout_ms, tenant, grants)

    def invoke_once(
        self, artefact: Artefact, inv: Invocation, *, timeout_ms: int | None, tenant: str,
        grants: Grants, keep_image: bool = False,
    ) -> Coroutine[Any, Any, Result]:
        """Run ``artefact`` in a fresh instance as a serverless request, whatever its mode.

        Unless ``keep_image``, no serverless image of it is used or kept: code run once
        (``isolate.eval``'s) must not push the images of the tenant's scripts out.
        """
        return self._invoke_fresh(artefact, inv, timeout_ms, tenant, grants, keep_image)

    def run_sync(self, artefact: Artefact, inv: Invocation, *, timeout_ms: int | None = _SCRIPT_DEFAULT) -> Result:
        """Synchronous ``invoke`` for the CLI and benchmarks (guest code runs on this thread)."""
        if timeout_ms is _SCRIPT_DEFAULT:
            timeout_ms = self.timeout_for(artefact)
        if artefact.magic.mode == "worker":
            driver = self._workers.get(artefact.key)
            if driver is None or driver.broken is not None:
                driver = self._workers[artefact.key] = self._driver(WorkerDriver, artefact)
                driver.load_script(artefact.bytecode, dict(artefact.env), timeout_ms)
            try:
                return driver.run_sync(inv, timeout_ms)
            finally:
                if driver.broken is not None:
                    self._discard(artefact.key, driver)
        image, tried = self.images.lookup(artefact)
        fresh = self._driver(Driver, artefact, image=image)
        try:
            start = self._start_fresh if tried else self._start_imaging
            return fresh.complete(*start(fresh, artefact, inv, timeout_ms))
        finally:
            fresh.close()

    def figures(self) -> dict[str, int]:
        """What this process holds, for monitor/stats: worker instances, serverless images."""
        images, stored = self.images.figures()
        return {"workers": len(self._workers), "images": images, "image_bytes": stored,
                "slow_scripts": self._slow.count()}

    async def socket_worker(
        self, artefact: Artefact, conn: Connection, *, tenant: str, grants: Grants | None
    ) -> None:
        """Bind ``conn`` to its script's worker instance (made on first use), which runs all
        its events: once that instance is gone the connection has been closed with 1012
        (``Hub.restart``) and its events raise the instance's failure."""
        driver = self._workers.get(artefact.key)
        if driver is None or driver.broken is not None:
            driver = await self._new_worker(artefact, tenant, grants)
        driver.sockets = self.sockets
        conn.worker = driver
        conn.runs = (self.timeout_for(artefact, tenant), functools.partial(self.threads.run, tenant))

    def socket_event(
        self, conn: Connection, event: list[Any], data: bytes | None,
        done: Callable[[Result | BaseException], None],
    ) -> None:
        """Start a WebSocket event of ``conn`` (bound by ``socket_worker``) in its worker
        instance; ``done`` gets its result or failure (``WorkerDriver.socket``)."""
        conn.worker.socket(event, data, *conn.runs, done)

    def socket_failed(self, artefact: Artefact, conn: Connection) -> None:
        """An event of ``conn`` failed: if it stopped its worker instance (a trap), that
        instance is dropped, and its other sockets closed with 1012."""
        driver = conn.worker
        if driver is not None and driver.broken is not None:
            self._discard(artefact.key, driver)

    def live_worker(self, artefact: Artefact) -> WorkerDriver | None:
        """``artefact``'s worker instance, if it has one and it is not broken."""
        driver = self._workers.get(artefact.key)
        return driver if driver is not None and driver.broken is None else None

    def evict(self, key: str) -> None:
        """Drop a worker instance or a serverless image (its script changed or was deleted);
        the worker's WebSocket clients are told to reconnect (1012) to the new version."""
        self.images.evict(key)
        driver = self._workers.pop(key, None)
        if driver is not None:
            self.sockets.restart(driver)
            driver.close_when_idle()  # requests in flight finish on the version they started

    def close(self) -> None:
        for driver in self._workers.values():
            driver.close()
        self._workers.clear()
        self.images.clear()
        self.threads.close()
        self.engine.close()
        self.registry.close()

    # -- internals --------------------------------------------------------------------------

    def _driver(
        self, kind: type[D], artefact: Artefact, tenant: str = DEFAULT_TENANT,
        image: DerivedImage | None = None, instance: GuestInstance | None = None,
        grants: Grants | None = None,
    ) -> D:
        """A driver of ``kind`` for ``artefact`` on ``instance``, or on a new one starting as
        ``image``."""
        grants = self._grants(artefact, tenant, grants)
        if instance is None:
            with tracing.maybe("instantiate"):
                instance = GuestInstance(
                    self.engine, self.settings.memory_limit, image,
                    Caller(tenant, artefact.path, grants),
                )
        return kind(
            instance,
            path=artefact.path, registry=self.registry, grants=grants,
            locate=artefact.locate, tenant=tenant, quota=self.quotas.of(tenant),
        )

    def _caller(self, artefact: Artefact, tenant: str, grants: Grants | None) -> Caller:
        """Who an instance of ``artefact`` makes its bound host calls for."""
        return Caller(tenant, artefact.path, self._grants(artefact, tenant, grants))

    def _grants(self, artefact: Artefact, tenant: str, grants: Grants | None) -> Grants:
        """``grants``, or for a caller that brings no ``Policy`` (None: the CLI, benches,
        tests) the ones its magic comments give, derived once per version as a Policy does:
        configuring every unit costs more than a request."""
        if grants is not None:
            return grants
        key = (tenant, artefact.key)
        own = self._own_grants.get(key)
        if own is None:
            if len(self._own_grants) >= OWN_GRANTS_KEPT:
                self._own_grants.clear()
            own = self._own_grants[key] = self.registry.grants(tenant, artefact.magic)
        return own

    def _start_fresh(
        self, driver: Driver, artefact: Artefact, inv: Invocation, timeout_ms: int | None
    ) -> Any:
        """Start a serverless request: at once from an image, else loading the script in the
        same crossing."""
        return driver.begin(inv, timeout_ms, load=_load(artefact, driver.instance.image))

    def _start_imaging(
        self, driver: Driver, artefact: Artefact, inv: Invocation, timeout_ms: int | None
    ) -> Any:
        """A script's first serverless request: its top level runs in a crossing of its own,
        whose memory becomes the script's image if it was pure, then the request starts.

        The load and the request each have the script's timeout, on this first request only.
        """
        logs: list[LogRecord] = []
        image = None
        try:
            if driver.load_script(artefact.bytecode, dict(artefact.env), timeout_ms, logs):
                image = self.engine.memories.derive(*driver.instance.memory())
        finally:
            self.images.keep(artefact, image)
        req, ops = driver.begin(inv, timeout_ms)
        req.logs[:0] = logs
        return req, ops

    def _answer_inline(
        self, artefact: Artefact, image: DerivedImage | None, inv: Invocation,
        timeout_ms: int | None, tenant: str, grants: Grants | None,
    ) -> Result | tuple[Driver, Any, list[dict]]:
        """A serverless request on the event loop, within the slice.

        Most end in this one crossing: their result comes back with no driver made for them.
        The rest (operations, a stream, logs, a failure) go on with a driver that takes the
        instance over, as if it had made the crossing.
        """
        caller = self._caller(artefact, tenant, grants)
        with tracing.maybe("instantiate"):
            instance = GuestInstance(self.engine, self.settings.memory_limit, image, caller)
        load = _load(artefact, image)
        header, blob, budget, slice_ms = first_envelope(
            FIRST_RID, inv, timeout_ms, self.settings.inline_budget_ms, load, artefact.path,
            instance.memory_limit,
        )
        crossed: tuple[dict[str, Any], bytes] | BaseException
        crossing = caller.crossing
        crossing.rerunnable = slice_ms is not None  # the slice, not the script's limit, bounds it
        try:
            head, out_blob = instance.cross(b"wx_run", header, blob, budget)
            crossed = orjson.loads(head), out_blob
        except Exception as exc:  # noqa: BLE001 - the driver takes it over, as its own
            crossed = exc
        else:
            result = answered(*crossed, FIRST_RID)
            if result is not None:
                crossing.rerunnable = False
                instance.crossed()  # what it changed in the host is kept now
                result.cold = load is not None
                result.memory = instance.memory_size
                instance.close()
                return result
        if crossing.rerun:  # it would have changed the host: run it where that can happen
            instance.close()
            raise SliceExceeded
        driver = self._driver(Driver, artefact, tenant, instance=instance, grants=grants)
        try:
            req, ops = driver.take_over(crossed, timeout_ms, load is not None, slice_ms)
            req.hops = inv.hops  # before its first op runs, in finish
            req.trace = inv.trace
        except BaseException:
            driver.close()
            raise
        finally:
            crossing.rerunnable = False
        instance.crossed()
        return driver, req, ops

    async def _invoke_fresh(
        self, artefact: Artefact, inv: Invocation, timeout_ms: int | None, tenant: str,
        grants: Grants | None, keep_image: bool = True,
    ) -> Result:
        """A serverless request: a fresh instance, inline while it fits the slice.

        A script's first request (it makes the image) and a slow script's run on the guest
        threads; so does a request that outran the slice, from scratch on a new instance.
        """
        image, tried = self.images.lookup(artefact) if keep_image else (None, True)
        started: tuple[Driver, Any, list[dict]] | None = None
        if tried and self._slow.inline(artefact.key):
            try:
                answer = self._answer_inline(artefact, image, inv, timeout_ms, tenant, grants)
            except SliceExceeded:
                self._slow.outran(artefact.key)
            else:
                self._slow.kept_to(artefact.key)
                if isinstance(answer, Result):
                    return answer
                started = answer
        offload = functools.partial(self.threads.run, tenant)
        if started is None:
            driver = self._driver(Driver, artefact, tenant, image, grants=grants)
            start = self._start_fresh if tried else self._start_imaging
            try:
                req, ops = await offload(lambda: start(driver, artefact, inv, timeout_ms))
            except BaseException:
                driver.close()
                if not tried:  # cancelled before it ran: the next request makes the image
                    self.images.abandon(artefact)
                raise
        else:
            driver, req, ops = started
        try:
            if driver.unsettled(req, ops):
                await driver.finish(req, ops, offload)
            result = driver.outcome(req)
        except BaseException:
            driver.close()
            raise
        result.cold = image is None
        result.memory = driver.instance.memory_size
        driver.close_when_idle()
        return result

    async def _invoke_worker(
        self, artefact: Artefact, inv: Invocation, timeout_ms: int | None, tenant: str,
        grants: Grants | None,
    ) -> Result:
        """A worker request, on its script's long-lived instance (made on first use)."""
        key = artefact.key
        driver = self._workers.get(key)
        cold = driver is None or driver.broken is not None
        if driver is None or driver.broken is not None:
            driver = await self._new_worker(artefact, tenant, grants)
        try:
            result = await driver.request(
                inv, timeout_ms, functools.partial(self.threads.run, tenant)
            )
            result.cold = cold
            result.memory = driver.instance.memory_size
            return result
        finally:
            if driver.broken is not None:
                self._discard(key, driver)

    async def _new_worker(
        self, artefact: Artefact, tenant: str, grants: Grants | None
    ) -> WorkerDriver:
        """The script's worker instance, created and loaded (it had none, or a broken one)."""
        driver = self._driver(WorkerDriver, artefact, tenant, grants=grants)
        self._workers[artefact.key] = driver
        try:
            async with driver.lock:  # taken before any await: requests queue behind the load
                with tracing.maybe("load"):
                    await self.threads.run(
                        tenant,
                        lambda: driver.load_script(artefact.bytecode, dict(artefact.env), self.timeout_for(artefact, tenant)),
                    )
        except BaseException:
            self._discard(artefact.key, driver)
            raise
        return driver

    def _discard(self, key: str, driver: Driver) -> None:
        if self._workers.get(key) is driver:
            del self._workers[key]
        self.sockets.restart(driver)
        driver.close()


class SlowScripts:
    """Serverless scripts that outran the inline slice, sent to the guest threads for a while.

    The slice is wall time, so a request can outrun it because the process was preempted (a
    busy machine, another thread holding the GIL), not because its script is slow; marking the
    script for good then sent every later request through a thread hop (2-3x its CPU cost). So
    a script goes to the threads for ``RETRY_S`` first, doubling up to ``RETRY_MAX_S`` while it
    keeps outrunning the slice on the retries, and is forgiven by the first retry that fits.
    What a truly slow script costs the event loop is one slice per ``RETRY_MAX_S``.
    """

    RETRY_S = 0.1
    RETRY_MAX_S = 60.0

    def __init__(self) -> None:
        self._until: dict[str, tuple[float, float]] = {}  # key → (inline again at, backoff)

    def inline(self, key: str) -> bool:
        """Whether ``key``'s next request may try the slice on the event loop."""
        slow = self._until.get(key)
        return slow is None or slow[0] <= time.monotonic()

    def outran(self, key: str) -> None:
        slow = self._until.get(key)
        backoff = min(2 * slow[1], self.RETRY_MAX_S) if slow else self.RETRY_S
        self._until[key] = (time.monotonic() + backoff, backoff)

    def kept_to(self, key: str) -> None:
        """``key``'s request fitted the slice: it is not slow (a dict miss when it never was)."""
        if self._until:
            self._until.pop(key, None)

    def count(self) -> int:
        """Scripts on the threads now."""
        now = time.monotonic()
        return sum(1 for until, _ in self._until.values() if until > now)


def _load(artefact: Artefact, image: DerivedImage | None) -> tuple[bytes, dict[str, str]] | None:
    """What a fresh instance loads with its first request: nothing from the script's image."""
    return None if image is not None else (artefact.bytecode, dict(artefact.env))
