"""Drives requests through one guest instance: their life cycle, async operations, who waits.

A worker instance may have several requests in flight, interleaved at their ``await`` points
just as in any JS runtime (``worker.py`` starts them in batches); a serverless instance has one.
What crosses is encoded in ``envelope.py``. Every crossing returns an envelope listing finished requests, failed ones, new host operations and log
lines, each tagged with its request id; the driver routes them, runs the operations on the event
loop, and resumes the guest as they finish.

A streamed response settles its request early, on ``started``, with a ``Result`` whose body is a
``BodyStream``; the request stays in flight (its operations run, its timeout counts) until the
guest reports it done or failed, and later ``chunks`` feed the stream, no faster than the client
takes them (the ``response.drain`` operation).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from runtime.host import Grants, HostError, OpContext
from runtime.host.quotas import Limits, TenantQuota
from runtime.host.registry import Entry, Registry, answer, end_request, error_value
from runtime.host.response import STREAM_BUFFER_BYTES
from runtime.sandbox import _capi
from runtime.sandbox.envelope import (
    FIRST_RID,
    env_entry,
    first_envelope,
    header_pairs,
    log_record,
    ops_of,
    result_of,
    stopped,
)
from runtime.sandbox.errors import Locate, ScriptError, ScriptTimeout
from runtime.sandbox.instance import GuestInstance, running
from runtime.sandbox.threads import Offload
from runtime.sandbox.types import BodyStream, ConsoleLog, Invocation, LogRecord, Result
from runtime.types import DEFAULT_TENANT

if TYPE_CHECKING:
    from runtime.host.websocket import Hub

T = TypeVar("T")


@dataclass(slots=True)
class InFlight:
    rid: int
    limit_ms: int | None
    deadline: float | None
    logs: list[LogRecord] = field(default_factory=list)
    outcome: Result | BaseException | None = None
    error: BaseException | None = None
    future: asyncio.Future[None] | None = None
    then: Callable[[InFlight], None] | None = None  # told once it settles, where none awaits it
    stream: BodyStream | None = None
    timer: asyncio.TimerHandle | None = None
    ops: int = 0  # its operations pending on the host
    console: ConsoleLog | None = None  # what keeps ``logs`` within the caps, once it logs
    context: OpContext | None = None  # who asks, for its ops: made on its first op
    hops: int = 0  # scripts the request already passed through (Invocation.hops)
    trace: contextvars.Context | None = None  # its ops run in it: their spans are its children

    def remaining_ms(self) -> float | None:
        if self.deadline is None:
            return None
        return max(0.0, (self.deadline - time.monotonic()) * 1000.0)

    def settle(self, outcome: Result | BaseException) -> None:
        """Settle once; an error after a streamed head ends the stream with it instead."""
        if isinstance(outcome, BaseException):
            self.error = self.error or outcome
            if self.stream is not None:
                self.stream.end(outcome)
        if self.outcome is None:
            self.outcome = outcome
            if self.future is not None and not self.future.done():
                self.future.set_result(None)
            if self.then is not None:
                self.then(self)


STREAM_OVERFLOW_BYTES = 64 * STREAM_BUFFER_BYTES
"""What a stream that does not wait (``res.write``) may hold before its request is failed: the
host's memory must not be at the mercy of a script writing faster than its client reads. A
tenant's streams together have a cap too, on what they hold beyond ``STREAM_BUFFER_BYTES`` each
(``Limits.stream_bytes_per_tenant``)."""

REFUSED_MAX = 64
"""Operations refused one by one to a request in one crossing; past it the request fails."""

LATE = "[after its request ended] "
"""Marks console output of a request the host had already given up on."""

CLOSED = ScriptError("the script's instance was closed")
"""What ``Driver.broken`` holds once the instance is closed; never raised."""


class SliceExceeded(Exception):
    """A crossing ran past the slice it was given on the event loop."""


class Driver:
    """Owns one ``GuestInstance`` and everything in flight on it.

    Made for every serverless request, so what most requests never touch (the lock that
    queues worker crossings, the operations' context) is made on first use, and the counters
    start as class attributes.
    """

    broken: BaseException | None = None
    _resuming = False
    _closing = False
    _left: dict[int, float | None] | None = None  # work the guest left: whose, until when
    _offload: Offload | None = None
    sockets: Hub | None = None  # a worker's WebSocket connections, when its script has them

    def __init__(
        self,
        instance: GuestInstance,
        *,
        path: str,
        registry: Registry,
        grants: Grants,
        locate: Locate | None = None,
        tenant: str = DEFAULT_TENANT,
        quota: TenantQuota | None = None,
    ) -> None:
        """``grants``: what the script version may use of the host (its ``Policy``'s)."""
        self.instance = instance
        self.path = path
        self.registry = registry
        self.grants = grants
        self.locate = locate
        self.tenant = tenant
        self.quota = quota or TenantQuota(Limits())
        self._requests: dict[int, InFlight] = {}
        self._ops: dict[int, tuple[InFlight, asyncio.Task[None] | asyncio.TimerHandle]] = {}
        # console output no request in flight owns (a worker's top level, a request the host
        # gave up on): the next request to finish on this instance carries it
        self._unowned: ConsoleLog | None = None
        self._results: list[dict[str, Any]] = []
        self._result_blob = bytearray()
        self._crossing = threading.Lock()
        self._rids = itertools.count(FIRST_RID)  # a guest thread takes one too (WorkerDriver.nested)

    @functools.cached_property
    def lock(self) -> asyncio.Lock:
        """Held while a crossing or a resume has the instance (worker requests queue on it)."""
        return asyncio.Lock()

    @property
    def idle(self) -> bool:
        return not self._requests

    # -- synchronous entry points (CLI, benches, the first crossing of a request) -----------

    def load_script(
        self, bytecode: bytes, env: dict[str, str], budget_ms: float | None,
        logs: list[LogRecord] | None = None,
    ) -> bool:
        """Evaluate the script's bytecode once in this instance (``wx_load``).

        Returns whether its top level was pure (ABI.md): memory as it stands may then stand in
        for running it again. What it logged goes to ``logs`` if given (and to a load error).
        """
        header = orjson.dumps(
            {"filename": self.path, **env_entry(env), "mem_limit": self.instance.memory_limit,
             "budget_ms": budget_ms}
        )
        head, _ = self._cross(b"wx_load", header, bytecode, budget_ms, None)
        out = orjson.loads(head)
        if logs is None:  # a worker's: its first request to finish carries them
            self._collect_logs(out)
            logs = self._unowned.records if self._unowned is not None else []
        else:
            logs += [log_record(log) for log in out.get("logs", ())]
        if "error" in out:
            err = ScriptError.from_guest(out["error"], self.path, self.locate)
            err.logs = logs + err.logs
            self._unowned = None
            raise err
        return out.get("pure") is True

    def begin(
        self,
        inv: Invocation,
        timeout_ms: int | None,
        load: tuple[bytes, dict[str, str]] | None = None,
    ) -> tuple[InFlight, list[dict]]:
        """Start a request with its first crossing; returns it and the operations it started.

        ``load`` is (bytecode, env) for a fresh instance: the script loads in the same
        crossing, as ``load_script`` would, and its failure is raised the same way.
        """
        req = self._new_request(timeout_ms)
        req.hops = inv.hops
        req.trace = inv.trace
        header, blob, budget, _ = first_envelope(
            req.rid, inv, timeout_ms, None, load, self.path, self.instance.memory_limit
        )

        def cross() -> tuple[dict[str, Any], bytes]:
            head, out_blob = self._cross(b"wx_run", header, blob, budget, req)
            return orjson.loads(head), out_blob

        return self._first_outcome(req, cross, load is not None, None)

    def take_over(
        self, crossed: tuple[dict[str, Any], bytes] | BaseException, timeout_ms: int | None,
        loaded: bool, slice_ms: float | None,
    ) -> tuple[InFlight, list[dict]]:
        """``begin``, for a fresh instance whose first crossing already ran without a driver
        (``first_envelope`` with rid ``FIRST_RID``): what it output, or what it raised."""
        req = self._new_request(timeout_ms)
        assert req.rid == FIRST_RID

        def cross() -> tuple[dict[str, Any], bytes]:
            if isinstance(crossed, (_capi.GuestTrap, MemoryError)):
                raise self._trapped(crossed, req) from crossed
            if isinstance(crossed, BaseException):
                raise crossed
            return crossed

        return self._first_outcome(req, cross, loaded, slice_ms)

    def _first_outcome(
        self, req: InFlight, cross: Callable[[], tuple[dict[str, Any], bytes]], loaded: bool,
        slice_ms: float | None,
    ) -> tuple[InFlight, list[dict]]:
        """The rest of ``begin`` once ``cross`` hands back the first crossing's output."""
        rid = req.rid
        try:
            out, out_blob = cross()
            if loaded:
                for log in out.get("logs", ()):  # what the top level logged is this request's
                    log["rid"] = log.get("rid") or rid
                if "error" in out:
                    self._collect_logs(out)
                    err = ScriptError.from_guest(out["error"], self.path, self.locate)
                    err.logs = req.logs + err.logs
                    self._forget(rid)
                    raise err
            if rid in out.get("skipped", ()):  # the load used the crossing's time up: never started
                self._forget(rid)
                raise ScriptTimeout.after(req.limit_ms, self.path)
        except ScriptTimeout as exc:
            if slice_ms is not None:
                raise SliceExceeded from exc
            raise
        ops = self._dispatch(out, out_blob)
        if slice_ms is not None and isinstance(req.error, ScriptTimeout):
            self._forget(rid)
            raise SliceExceeded
        return req, ops

    def _new_request(self, timeout_ms: int | None, now: float | None = None) -> InFlight:
        req = self._unlisted_request(timeout_ms, now)
        self._requests[req.rid] = req
        return req

    def _unlisted_request(self, timeout_ms: int | None, now: float | None = None) -> InFlight:
        """A new request, not yet among those in flight (safe on any thread)."""
        deadline = None if not timeout_ms else (now or time.monotonic()) + timeout_ms / 1000.0
        return InFlight(next(self._rids), timeout_ms or None, deadline)

    def run_sync(
        self,
        inv: Invocation,
        timeout_ms: int | None = None,
        load: tuple[bytes, dict[str, str]] | None = None,
    ) -> Result:
        """Run one request to completion from synchronous code; a streamed body is gathered."""
        return self.complete(*self.begin(inv, timeout_ms, load=load))

    def complete(self, req: InFlight, ops: list[dict]) -> Result:
        """Finish a started request from synchronous code (``run_sync``)."""
        if req.outcome is None or req.stream is not None:
            asyncio.run(self._gather(req, ops))
        return self.outcome(req)

    async def _gather(self, req: InFlight, ops: list[dict]) -> None:
        await self.finish(req, ops)
        out = req.outcome
        if req.stream is None or not isinstance(out, Result):
            return
        try:
            out.body = b"".join([chunk async for chunk in req.stream])
        except ScriptError as exc:
            req.outcome = exc
        out.stream = None

    # -- asynchronous completion ------------------------------------------------------------

    async def _cross_off(
        self, export: bytes, header: bytes, blob: bytes, budget: float | None,
        resume: bool = False,
    ) -> tuple[bytes, bytes]:
        """One crossing on a guest thread; what it stopped is settled back on the event loop."""
        enter = functools.partial(self._enter, export, header, blob, budget)
        try:
            return await (self._offload(enter, resume=resume) if self._offload else _now(enter))
        except (_capi.GuestTrap, MemoryError) as exc:
            raise self._trapped(exc, None) from exc

    @staticmethod
    def unsettled(req: InFlight, ops: list[dict]) -> bool:
        """Whether a started request still needs ``finish`` (most finish in their first crossing)."""
        return bool(ops) or req.outcome is None or req.stream is not None

    async def finish(self, req: InFlight, ops: list[dict], offload: Offload | None = None) -> None:
        """Run the request's operations and resumes until it settles or its time is up."""
        self._offload = offload
        self._start_ops(ops)
        if self._left:  # the first crossing handed back work it had no time for
            self._wake()
        if req.outcome is None:
            # a timer settles it at its deadline: cheaper than wait_for and shield, per request
            loop = asyncio.get_running_loop()
            req.future = loop.create_future()
            remaining = req.remaining_ms()
            timer = None if remaining is None else loop.call_later(
                remaining / 1000.0, self._timed_out, req
            )
            try:
                await req.future
            except asyncio.CancelledError:
                self._abandon(req.rid)
                raise
            finally:
                if timer is not None:
                    timer.cancel()
        if req.stream is not None:
            self._watch_stream(req)

    def _watch_stream(self, req: InFlight) -> None:
        """Bind a streamed body to this loop and hold its request to the timeout."""
        assert req.stream is not None
        loop = asyncio.get_running_loop()
        req.stream.bind(loop)
        remaining = req.remaining_ms()
        if remaining is not None and req.rid in self._requests:
            req.timer = loop.call_later(remaining / 1000.0, self._timed_out, req)

    def _timed_out(self, req: InFlight) -> None:
        req.settle(ScriptTimeout.after(req.limit_ms, self.path))
        self._abandon(req.rid)

    def outcome(self, req: InFlight) -> Result:
        """The request's result (or raise its error); forgets the request unless it streams.

        Console output no request owned comes first in its logs (``_collect_logs``).
        """
        if self._unowned is not None:
            req.logs[:0] = self._unowned.records
            self._unowned = None
        out = req.outcome
        if isinstance(out, Result) and out.stream is not None:
            out.logs = req.logs  # the same list: what the stream logs later still reaches it
            return out
        self._forget(req.rid)
        if isinstance(out, BaseException):
            if isinstance(out, ScriptError):
                out.logs = req.logs + out.logs
            raise out
        assert out is not None
        if req.logs:
            out.logs = req.logs + out.logs
        return out

    def close(self) -> None:
        for req in self._requests.values():
            if req.context is not None:
                end_request(req.context)
        for _, handle in self._ops.values():
            handle.cancel()
        self.quota.ops -= len(self._ops)
        self._ops.clear()
        if self.broken is None:  # a resume still queued must not cross into a freed store
            self.broken = CLOSED
        if self._crossing.acquire(blocking=False):
            try:
                self.instance.close()
            finally:
                self._crossing.release()
        else:  # a thread is inside the guest (a request that timed out): free it after that
            threading.Thread(target=self._close_after_crossing, daemon=True).start()

    def _close_after_crossing(self) -> None:
        with self._crossing:
            self.instance.close()

    def close_when_idle(self) -> None:
        """Close now, or once the streamed responses still in flight have ended."""
        if self.idle:
            self.close()
        else:
            self._closing = True

    # -- internals --------------------------------------------------------------------------

    def _cross(
        self, export: bytes, header: bytes, blob: bytes, budget: float | None, req: InFlight | None
    ) -> tuple[bytes, bytes]:
        try:
            return self._enter(export, header, blob, budget)
        except (_capi.GuestTrap, MemoryError) as exc:
            raise self._trapped(exc, req) from exc

    def _enter(
        self, export: bytes, header: bytes, blob: bytes, budget: float | None
    ) -> tuple[bytes, bytes]:
        """The crossing itself, safe on any thread; a trap is raised as it came."""
        if self.broken is not None:
            raise ScriptError(
                "the script's instance was stopped by an earlier failure", path=self.path
            )
        with self._crossing:  # close() from the event loop waits for a crossing on a thread
            return self._inside(export, header, blob, budget)

    def _inside(
        self, export: bytes, header: bytes, blob: bytes, budget: float | None
    ) -> tuple[bytes, bytes]:
        """The crossing, once this thread holds the instance; a host call made in it finds
        this driver as ``running.driver``."""
        if self.instance.closed:
            raise ScriptError("the script's instance was closed", path=self.path)
        outer, running.driver = running.driver, self
        try:
            return self.instance.cross(export, header, blob, budget)
        finally:
            running.driver = outer

    def _trapped(self, exc: BaseException, req: InFlight | None) -> ScriptError:
        """The instance stopped (``exc``): it is broken, and every request on it fails."""
        err = stopped(exc, req.limit_ms if req else None, self.path)
        self.broken = err
        for other in list(self._requests.values()):
            other.settle(err)
        return err

    def _dispatch(self, out: dict, blob: bytes) -> list[dict]:
        if self._left or "more" in out:
            self._left_over(out.get("more"))
        self._collect_logs(out)
        if "started" in out or "chunks" in out:
            self._stream_items(out, blob)
        if "ws" in out and self.sockets is not None:
            self.sockets.apply(self.tenant, self.path, out["ws"], blob)
        requests = self._requests
        for rid, off, length in out.get("ended", ()):
            req = requests.get(rid)
            if req is not None:
                if req.stream is not None:
                    req.stream.feed(blob[off : off + length])
                    req.stream.end()
                self._forget(rid)
        for done in out.get("done", ()):
            req = requests.get(done[0])
            if req is not None:
                req.settle(result_of(done, blob))
                self._cancel_ops_of(req)
        for failed in out.get("failed", ()):
            req = self._requests.get(failed["rid"])
            if req is None:
                continue
            err = ScriptError.from_guest(failed.get("error") or {}, self.path, self.locate)
            if isinstance(err, ScriptTimeout):
                err = ScriptTimeout.after(req.limit_ms, self.path)
            req.settle(err)
            if req.stream is not None:
                self._forget(req.rid)
            else:
                self._cancel_ops_of(req)
        for op_id in out.get("cancel", ()):
            entry = self._ops.get(op_id)
            if entry:
                entry[1].cancel()
                self._release(op_id)
        return ops_of(out, blob)

    def _left_over(self, rids: list[int] | None) -> None:
        """Work a crossing left (``more``: whose it is, ABI.md) goes on in later resumes until
        the latest deadline of the requests it belongs to, answered ones included: each obeys
        its own timeout (a serverless instance is closed instead, work and all). A crossing
        without ``more`` left nothing; work of no request known has no time left."""
        if not rids:
            self._left = None
            return
        known, requests = self._left or {}, self._requests
        self._left = {
            rid: req.deadline if (req := requests.get(rid)) is not None else known.get(rid, 0.0)
            for rid in rids
        }

    def _left_ms(self) -> float | None:
        """The budget of the work left: until its latest deadline (None: it has none); past it,
        a last millisecond, in which the guest stops it."""
        assert self._left
        deadlines = list(self._left.values())
        if None in deadlines:
            return None
        until = max(d for d in deadlines if d is not None)
        return max(1.0, (until - time.monotonic()) * 1000.0)

    def _stream_items(self, out: dict, blob: bytes) -> None:
        for started in out.get("started", ()):
            req = self._requests.get(started["rid"])
            if req is None or req.outcome is not None:
                continue
            req.stream = stream = BodyStream()
            if req.context is not None:
                req.context.stream = stream
            stream.on_close(functools.partial(self._abandon, req.rid))
            self.quota.add_stream(stream)
            headers = header_pairs(started.get("headers", ()))
            req.settle(Result(int(started.get("status", 200)), headers, b"", stream=stream))
        for chunk in out.get("chunks", ()):
            req = self._requests.get(chunk["rid"])
            if req is not None and req.stream is not None:
                body = chunk["body"]
                req.stream.feed(blob[body["off"] : body["off"] + body["len"]])
                if req.stream.buffered > STREAM_BUFFER_BYTES:
                    self._check_stream(req)

    def _check_stream(self, req: InFlight) -> None:
        """End a stream whose client has fallen too far behind (or whose tenant's streams all
        together have), and the request with it."""
        assert req.stream is not None
        waiting = req.stream.buffered
        if waiting > STREAM_OVERFLOW_BYTES:
            why = f"{waiting // (1024 * 1024)} MiB written with res.write() were still waiting for it"
        else:
            cap = self.quota.limits.stream_bytes_per_tenant
            ahead = self.quota.stream_bytes_ahead(STREAM_BUFFER_BYTES)
            if ahead <= cap:
                return
            why = (
                f"this tenant's streamed responses hold {ahead // (1024 * 1024)} MiB their clients "
                f"have not read, past its cap of {cap // (1024 * 1024)} MiB "
                "(WEXEC_TENANT_STREAM_BYTES)"
            )
        err = ScriptError(
            f"the client reads the streamed response too slowly: {why}; return an async "
            "generator or a ReadableStream to be paced by the client instead",
            name="StreamOverflow", path=self.path,
        )
        req.stream.cut(err)  # what it held is let go: the client sees the body cut short
        req.settle(err)
        self._abandon(req.rid)

    def _collect_logs(self, out: dict, requests: dict[int, InFlight] | None = None) -> None:
        """Keep a crossing's console output with its requests (those in flight, or
        ``requests``), within the caps (``ConsoleLog``).

        Output of no request in flight (a worker's top level, a request the host already gave
        up on) is kept within the same caps for the next request to finish on this instance.
        """
        logs = out.get("logs")
        if not logs:
            return
        quota = self.quota
        if requests is None:
            requests = self._requests
        dropping: list[ConsoleLog] = []
        for log in logs:
            rec = log_record(log)
            rid = log.get("rid", 0)
            req = requests.get(rid)
            if req is not None:
                console = req.console
                if console is None:
                    console = req.console = ConsoleLog(req.logs)
            else:
                if rid:
                    rec.message = LATE + rec.message
                console = self._unowned
                if console is None:
                    console = self._unowned = ConsoleLog()
            if not console.add(rec, quota) and console not in dropping:
                dropping.append(console)
        for console in dropping:
            console.note(quota)

    def _start_ops(self, ops: list[dict]) -> None:
        """Start the operations a crossing listed, each counted against its request's and its
        tenant's caps until it ends; the registry decides whether the script may run it.

        One past a cap, or refused, is answered at once with the error; a request that lists
        more than ``REFUSED_MAX`` such in one crossing fails as a whole with that error instead,
        so the answers never make an envelope as large as the flood.
        """
        if not ops:
            return
        quota, requests, registry = self.quota, self._requests, self.registry
        grants = self.grants
        loop = asyncio.get_running_loop()
        refused: dict[int, int] | None = None  # by rid
        for op in ops:
            req = requests.get(op.get("rid", 0))
            if req is None:
                continue
            op_id = op["id"]
            handle: asyncio.Task[None] | asyncio.TimerHandle
            try:
                why = quota.refuse_op(req.ops)
                if why is not None:
                    raise why
                entry = registry.op(op.get("op", ""), grants)
                args = op.get("args") or {}
                if entry.delay is not None:
                    handle = loop.call_later(entry.delay(args), self._waited, op_id)
                else:
                    ctx = req.context or self._context(req, grants)
                    handle = loop.create_task(
                        self._run_op(entry, op_id, args, ctx), context=req.trace
                    )
            except (HostError, TypeError, ValueError) as exc:
                refused = refused or {}
                count = refused[req.rid] = refused.get(req.rid, 0) + 1
                if count > REFUSED_MAX:
                    name = exc.js_name if isinstance(exc, HostError) else "Error"
                    req.settle(ScriptError(str(exc), name=name, path=self.path))
                    self._abandon(req.rid)
                else:
                    self._results.append(answer(op_id, False, error_value(exc), self._result_blob))
                continue
            req.ops += 1
            quota.ops += 1
            self._ops[op_id] = (req, handle)
        if refused:
            self._wake()

    def context_of(self, rid: int) -> OpContext | None:
        """Who asks for request ``rid``'s ops, for a host call made in its crossing that acts
        for it (a relative fetch); None if no such request is in flight here."""
        req = self._requests.get(rid)
        if req is None:
            return None
        return req.context or self._context(req, self.grants)

    def _context(self, req: InFlight, grants: Grants) -> OpContext:
        """Who asks for ``req``'s ops: made on its first that runs (a delay needs none)."""
        req.context = OpContext(
            self.tenant, self.path, req.rid, req.deadline, grants, req.stream,
            services=self.registry.services, quota=self.quota, hops=req.hops,
        )
        return req.context

    def _waited(self, op_id: int) -> None:
        """A delay (``HostDelay``) is over."""
        if self._release(op_id):
            self._results.append({"id": op_id, "ok": True, "value": None})
            self._wake()

    def _release(self, op_id: int) -> bool:
        """Uncount a pending operation; False if it was no longer pending."""
        entry = self._ops.pop(op_id, None)
        if entry is None:
            return False
        entry[0].ops -= 1
        self.quota.ops -= 1
        return True

    async def _run_op(self, entry: Entry, op_id: int, args: dict[str, Any], ctx: OpContext) -> None:
        ok, value = await self.registry.run(entry, args, ctx)
        if self._release(op_id):
            self._results.append(answer(op_id, ok, value, self._result_blob))
            self._wake()

    def _wake(self) -> None:
        """Resume the guest with the results queued, once the lock is free."""
        if not self._resuming:
            self._resuming = True
            asyncio.ensure_future(self._resume())

    async def _resume(self) -> None:
        try:
            async with self.lock:
                while (self._results or self._left) and self.broken is None:
                    going_on = not self._results  # only the work a crossing left
                    results, blob = self._results, bytes(self._result_blob)
                    self._results, self._result_blob = [], bytearray()
                    budget = self._resume_budget()
                    header = orjson.dumps({"budget_ms": budget, "results": results})
                    try:
                        head, out_blob = await self._cross_off(
                            b"wx_resume", header, blob, budget, resume=True
                        )
                    except ScriptError:
                        return
                    self._start_ops(self._dispatch(orjson.loads(head), out_blob))
                    if going_on:
                        break  # requests waiting for the instance cross before its next slice
        finally:
            self._resuming = False
            if (self._results or self._left) and self.broken is None:
                self._resuming = True
                asyncio.ensure_future(self._resume())

    def _resume_budget(self) -> float | None:
        """A resume's budget: until the latest deadline of the requests in flight and of the
        work left (None: one of them has none, or there is none). One pass over the deadlines,
        not a call per request: a worker with its sockets' events in flight has many."""
        requests = self._requests
        deadlines = [d for r in requests.values() if (d := r.deadline) is not None]
        if len(deadlines) < len(requests):
            return None
        budget = max(0.0, (max(deadlines) - time.monotonic()) * 1000.0) if deadlines else None
        if self._left:
            left = self._left_ms()
            if left is None:
                return None
            budget = left if budget is None else max(budget, left)
        return budget

    def _cancel_ops_of(self, req: InFlight) -> None:
        if not req.ops:
            return
        for op_id, (owner, handle) in list(self._ops.items()):
            if owner is req:
                handle.cancel()
                self._release(op_id)

    def _abandon(self, rid: int) -> None:
        """Forget a request the guest is still running (timed out, cancelled, stream dropped).

        A worker instance is told (``{"end": rid}``), so it drops the request too instead of
        keeping it parked on operations that will never finish; a closing one needs no word.
        """
        if rid not in self._requests:
            return
        self._forget(rid)
        if not self._closing and self.broken is None:
            self._results.append({"end": rid})
            self._wake()

    def _forget(self, rid: int) -> None:
        req = self._requests.pop(rid, None)
        if req is not None:
            if req.timer is not None:
                req.timer.cancel()
            self._cancel_ops_of(req)
            if req.context is not None:
                end_request(req.context)
        if self._closing and not self._requests:
            self._closing = False
            asyncio.ensure_future(self._close_when_free())

    async def _close_when_free(self) -> None:
        async with self.lock:  # never while a crossing runs on a guest thread
            self.close()


async def _now(fn: Callable[[], T]) -> T:
    return fn()
