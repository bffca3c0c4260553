"""A worker script's driver: its requests share one long-lived instance, in batches.

Under load many requests for one worker script arrive together; one crossing for all of them
pays the fixed costs (the hop to a guest thread, the call, the envelope, the prelude's flush)
once, and runs them back to back while the guest's code and heap are in the caches. The
requests that arrive while a crossing runs start together in the next one, so the event loop
never runs a worker's code and no request is stopped for a scheduling decision.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson

from runtime.sandbox import _capi
from runtime.sandbox.driver import Driver, InFlight
from runtime.sandbox.envelope import budget_ms, request_item, result_of, stopped
from runtime.sandbox.errors import ScriptError, ScriptTimeout
from runtime.sandbox.threads import Offload
from runtime.sandbox.types import Invocation, Result

BATCH_MAX = 256
"""Most requests one crossing starts: bounds the envelope a burst of requests makes."""

SWEEP_S = 0.05
"""How often socket events in flight are checked against their deadlines: a handler that runs
past its timeout is stopped up to this much later."""

Waiting = tuple[Invocation, int | None, "asyncio.Future[tuple[InFlight, list[dict]]]"]
"""A request waiting for the next crossing: what it asks, its timeout, where its start goes."""


class WorkerDriver(Driver):
    """A ``Driver`` whose requests, from any number of callers, join batches."""

    _batching = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._batch: list[Waiting] = []
        self._timed: dict[int, InFlight] = {}  # socket events in flight with a deadline
        self._replies: dict[int, Callable[[Result | BaseException], None]] = {}  # by rid
        self._sweeper: asyncio.TimerHandle | None = None

    @property
    def idle(self) -> bool:
        return super().idle and not self._batch

    async def request(self, inv: Invocation, timeout_ms: int | None, offload: Offload) -> Result:
        """Run one request on a shared (worker) instance, interleaving with others in flight.

        The request joins the next batch: requests that arrive while a crossing runs on a guest
        thread start together in the following one, so under load one hop to a thread carries
        many requests, and the event loop never runs a worker's code.
        """
        self._offload = offload
        future: asyncio.Future[tuple[InFlight, list[dict]]] = (
            asyncio.get_running_loop().create_future()
        )
        self._batch.append((inv, timeout_ms, future))
        if not self._batching:
            self._batching = True
            asyncio.ensure_future(self._run_batches())  # starts next iteration: others join
        req, ops = await future
        if self.unsettled(req, ops):
            await self.finish(req, ops, offload)
        return self.outcome(req)

    def nested(
        self, inv: Invocation, timeout_ms: int | None, loop: asyncio.AbstractEventLoop
    ) -> Result | ScriptError | InFlight | None:
        """Run ``inv`` now, on this thread, inside the crossing of the instance that asked for
        it (a relative fetch, ``Gateway.inline``): no event loop turn and no thread hop between
        the two scripts. None when this instance is busy or not ready (the caller goes the
        usual way, through the event loop).

        Most requests finish in that one crossing: their Result, or their ScriptError, comes
        back. One that goes on (it awaits an operation, it streams) is handed to the event
        loop, where it goes on as any request of the instance does; its InFlight comes back,
        for ``follow``. Nothing here touches what the event loop keeps, but through ``loop``.
        """
        if self.broken is not None or self._closing or self._offload is None:
            return None
        if not self._crossing.acquire(blocking=False):
            return None
        req = self._unlisted_request(timeout_ms)
        req.hops = inv.hops
        header = orjson.dumps({"budget_ms": budget_ms(timeout_ms),
                               "batch": [request_item(req.rid, inv)]})
        try:
            if self.broken is not None:
                return None
            head, blob = self._inside(b"wx_run", header, inv.body, timeout_ms)
        except (_capi.GuestTrap, MemoryError) as exc:
            self.broken = err = stopped(exc, req.limit_ms, self.path)
            loop.call_soon_threadsafe(self._trapped, exc, None)  # fails the others in flight
            return err
        except ScriptError:  # closed meanwhile
            return None
        finally:
            self._crossing.release()
        out = orjson.loads(head)
        rid = req.rid
        done, failed = out.get("done", ()), out.get("failed", ())
        alone = (len(done) + len(failed) == 1 and len(out) == 1 + ("logs" in out)
                 and (done[0][0] if done else failed[0]["rid"]) == rid
                 and all(log.get("rid") == rid for log in out.get("logs", ())))
        if not alone:  # it goes on, or the crossing ran other requests' work: the loop's
            loop.call_soon_threadsafe(self._adopt, req, out, blob)
            return req
        self._collect_logs(out, {rid: req})
        if done:
            result = result_of(done[0], blob)
            result.logs = req.logs + result.logs
            result.memory = self.instance.memory_size
            return result
        err = ScriptError.from_guest(failed[0].get("error") or {}, self.path, self.locate)
        if isinstance(err, ScriptTimeout):
            err = ScriptTimeout.after(req.limit_ms, self.path)
        err.logs = req.logs + err.logs
        return err

    def _adopt(self, req: InFlight, out: dict, blob: bytes) -> None:
        """A request ``nested`` started goes on from its first crossing's output, here on the
        event loop, as any request of the instance."""
        self._requests[req.rid] = req
        if self.broken is not None:
            req.settle(self.broken)
        self._start_ops(self._dispatch(out, blob))
        if self._left:
            self._wake()

    async def follow(self, req: InFlight) -> Result:
        """The outcome of a request ``nested`` handed to the event loop."""
        if self.unsettled(req, []):
            await self.finish(req, [], self._offload)
        result = self.outcome(req)
        result.memory = self.instance.memory_size
        return result

    def socket(
        self, event: list[Any], data: bytes | None, timeout_ms: int | None, offload: Offload,
        done: Callable[[Result | BaseException], None],
    ) -> None:
        """Start one WebSocket event (``[kind, socket id, ...]``, guest/ABI.md) as a request of
        this instance; ``done`` gets its result, or its handler's failure, once it ends.

        The event enters with the next resume, beside the operations' results, so the events
        and results that arrive together cross together; it has a request's timeout
        (``_sweep``), operations and logs. Nothing waits for it on the event loop: its end is a
        call from the crossing's report, which costs a message no task switch."""
        if self.broken is not None:
            raise ScriptError(str(self.broken), path=self.path)
        self._offload = offload
        req = self._new_request(timeout_ms)
        req.then = self._socket_ended
        self._replies[req.rid] = done
        entry: dict[str, Any] = {"ws": [event[0], req.rid, *event[1:]]}
        if data is not None:  # a binary message: a reference into the blob, as ops' bytes are
            entry["off"], entry["len"] = len(self._result_blob), len(data)
            self._result_blob += data
        self._results.append(entry)
        self._wake()
        if req.deadline is not None:
            self._timed[req.rid] = req
            if self._sweeper is None:
                self._sweeper = asyncio.get_running_loop().call_later(SWEEP_S, self._sweep)

    def _socket_ended(self, req: InFlight) -> None:
        """A socket event settled: its caller gets the outcome (``outcome``: logs, and the
        request forgotten)."""
        self._timed.pop(req.rid, None)
        done = self._replies.pop(req.rid)
        try:
            result = self.outcome(req)
        except Exception as err:  # noqa: BLE001 - the caller's to handle, as an awaiter's would be
            done(err)
        else:
            done(result)

    def _sweep(self) -> None:
        """Time out the socket events past their deadline; one timer per instance looks, while
        any is in flight, rather than one per event (what thousands of messages a second would
        cost the event loop)."""
        now = time.monotonic()
        for req in [r for r in self._timed.values() if r.deadline is not None and r.deadline <= now]:
            self._abandon(req.rid)  # first: the guest is told to drop it while it is still known
            req.settle(ScriptTimeout.after(req.limit_ms, self.path))
        self._sweeper = (
            asyncio.get_running_loop().call_later(SWEEP_S, self._sweep) if self._timed else None
        )

    async def _run_batches(self) -> None:
        try:
            while self._batch:
                async with self.lock:  # after any resume: one crossing at a time
                    batch, self._batch = self._batch[:BATCH_MAX], self._batch[BATCH_MAX:]
                    skipped = await self._cross_batch(batch)
                self._batch[:0] = skipped  # first in line for the next crossing
        finally:
            self._batching = False

    async def _cross_batch(
        self, batch: list[Waiting]
    ) -> list[Waiting]:
        """Start every request of ``batch`` in one crossing on a guest thread; returns the ones
        the guest did not start (the crossing used up its budget first: ABI.md)."""
        batch = [entry for entry in batch if not entry[2].done()]  # callers gone meanwhile
        if not batch:
            return []
        now = time.monotonic()
        reqs = [self._new_request(timeout_ms, now) for _, timeout_ms, _ in batch]
        for req, (inv, _, _) in zip(reqs, batch, strict=True):
            req.hops = inv.hops
            req.trace = inv.trace
        limits = [req.limit_ms for req in reqs if req.limit_ms is not None]
        budget = min(limits) if len(limits) == len(reqs) else None  # each request's own limit
        header = orjson.dumps({
            "budget_ms": budget_ms(budget), "batch": [request_item(r.rid, inv) for r, (inv, _, _) in zip(reqs, batch)]
        })
        bodies = b"".join(inv.body for inv, _, _ in batch)
        # the epoch backstop: the last request may start just before the budget is used up
        backstop = None if budget is None else 2 * budget
        try:
            head, blob = await self._cross_off(b"wx_run", header, bodies, backstop)
        except ScriptError as err:  # a trap (it settled every request), closed, or broken
            for req in reqs:
                req.settle(err)
            outcomes: list[tuple[InFlight, list[dict]]] = [(req, []) for req in reqs]
            skipped_rids: set[int] = set()
        else:
            out = orjson.loads(head)
            skipped_rids = set(out.get("skipped", ()))
            ops_by_rid: dict[int, list[dict]] = {}
            for op in self._dispatch(out, blob):
                ops_by_rid.setdefault(op.get("rid", 0), []).append(op)
            outcomes = [(req, ops_by_rid.pop(req.rid, [])) for req in reqs]
            for ops in ops_by_rid.values():  # of requests that went on in this crossing
                self._start_ops(ops)
            if self._left:
                self._wake()
        skipped = []
        for entry, (req, ops) in zip(batch, outcomes, strict=True):
            future = entry[2]
            if req.rid in skipped_rids:
                self._forget(req.rid)
                skipped.append(entry)
            elif future.done():  # the caller went away (cancelled) while its request ran
                self._abandon(req.rid)
            else:
                future.set_result((req, ops))
        return skipped
