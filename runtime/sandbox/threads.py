"""Guest threads, shared fairly between tenants.

Guest code that may run long leaves the event loop for a thread; ctypes releases the GIL while
wasm runs, so guest threads run in parallel and the OS time-slices them. What must not happen is
one tenant's runaway requests making another tenant wait for their timeouts. So a tenant holds
at most ``per_tenant`` threads at once for new requests, and as many again for resuming its
requests in flight (so those never queue behind its CPU-bound new ones); its excess waits in a
queue of its own, while the pool grows (up to ``threads``) to give every other tenant a thread
at once. Guest threads run at a
lower CPU priority than the event loop, so spinning guests cannot starve the server's own work.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from queue import Empty, SimpleQueue
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Offload(Protocol):
    """How a driver sends a crossing to a guest thread (``GuestThreads.run`` for one tenant)."""

    def __call__(self, fn: Callable[[], T], *, resume: bool = False) -> Awaitable[T]: ...

RESUME_LANE = "\0resume"
"""Appended to a tenant's name for the threads that resume its requests in flight."""
GUEST_NICE = 5
"""How much lower guest threads' CPU priority is than the event loop's (Linux nice levels)."""


class GuestThreads:
    """Runs guest crossings off the event loop, at most ``per_tenant`` of one tenant at a time."""

    def __init__(self, threads: int, per_tenant: int) -> None:
        self.per_tenant = per_tenant
        self._pool = _Pool(threads)
        self._running: dict[str, int] = {}
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}

    async def run(self, tenant: str, fn: Callable[[], T], *, resume: bool = False) -> T:
        """``fn()`` on a guest thread, once ``tenant`` has a thread to spare; ``resume`` says it
        resumes requests already running, which have threads of their own."""
        loop = asyncio.get_running_loop()
        if resume:
            tenant += RESUME_LANE
        if self._running.get(tenant, 0) >= self.per_tenant:
            await self._wait_turn(tenant, loop)
        else:
            self._running[tenant] = self._running.get(tenant, 0) + 1
        result: asyncio.Future[T] = loop.create_future()
        try:
            # The tenant's thread is its own until fn returns, even if the caller stops waiting
            # (a timeout): the slot is released when the thread is done, not when the await ends.
            self._pool.submit(fn, loop, self._settle, tenant, result)
        except BaseException:
            self._release(tenant)
            raise
        return await result

    def busy(self, tenant: str) -> int:
        """Threads ``tenant`` holds now."""
        return self._running.get(tenant, 0)

    def close(self) -> None:
        self._pool.close()

    async def _wait_turn(self, tenant: str, loop: asyncio.AbstractEventLoop) -> None:
        turn: asyncio.Future[None] = loop.create_future()
        queue = self._waiting.setdefault(tenant, deque())
        queue.append(turn)
        try:
            await turn  # _release hands its slot over directly: the count stays
        except asyncio.CancelledError:
            if not turn.cancelled():
                self._release(tenant)  # the slot arrived as we were cancelled: pass it on
            elif turn in queue:
                queue.remove(turn)
            raise

    def _settle(
        self, tenant: str, result: asyncio.Future[T], value: T | None, exc: BaseException | None
    ) -> None:
        """``fn`` of ``run`` returned ``value`` or raised ``exc`` (``CancelledError``: the pool
        shut down before it ran): its caller gets it, its tenant the thread back."""
        self._release(tenant)
        if result.cancelled():
            return
        if isinstance(exc, asyncio.CancelledError):
            result.cancel()
        elif exc is not None:
            result.set_exception(exc)
        else:
            result.set_result(value)  # type: ignore[arg-type]

    def _release(self, tenant: str) -> None:
        queue = self._waiting.get(tenant)
        while queue:
            turn = queue.popleft()
            if not turn.done():
                turn.set_result(None)
                return
        if queue is not None:
            del self._waiting[tenant]
        left = self._running[tenant] - 1
        if left:
            self._running[tenant] = left
        else:
            del self._running[tenant]


Settle = Callable[[str, "asyncio.Future[Any]", Any, "BaseException | None"], None]
"""``GuestThreads._settle``: how a guest thread hands a crossing's outcome back to its loop."""
Work = tuple[Callable[[], Any], asyncio.AbstractEventLoop, Settle, str, "asyncio.Future[Any]"]


class _Pool:
    """Up to ``size`` guest threads taking work from one queue, started as it is needed.

    A crossing costs one queue put to reach a thread and one ``call_soon_threadsafe`` to come
    back: ``concurrent.futures`` adds a future, a work item, locks and callbacks to every hop,
    about a quarter of a hop's CPU time on a loaded machine. A new thread starts whenever no
    idle one is known to be waiting, so, as with ``ThreadPoolExecutor``, work never waits while
    the pool is below its size (what lets every other tenant have a thread at once).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.closed = False
        self._queue: SimpleQueue[Work | None] = SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle: deque[None] = deque()  # one token per thread that finished and waits again
        _pools.add(self)

    def submit(
        self, fn: Callable[[], Any], loop: asyncio.AbstractEventLoop, settle: Settle, tenant: str,
        result: asyncio.Future[Any],
    ) -> None:
        if self.closed:
            raise RuntimeError("the guest threads were closed")
        self._queue.put((fn, loop, settle, tenant, result))
        try:
            self._idle.pop()  # a thread that waits takes it (deque.pop is atomic)
        except IndexError:
            if len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._work, name=f"wexec-guest_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def close(self, wait: bool = False) -> None:
        """Stop the threads once their crossing ends (``wait``: and wait for that); work not
        started is cancelled."""
        self.closed = True
        while True:
            try:
                work = self._queue.get_nowait()
            except Empty:
                break
            if work is not None:
                _, loop, settle, tenant, result = work
                try:
                    loop.call_soon_threadsafe(
                        settle, tenant, result, None, asyncio.CancelledError()
                    )
                except RuntimeError:  # its loop is closed: nobody waits any more
                    pass
        for _ in self._threads:
            self._queue.put(None)
        if wait:
            for thread in self._threads:
                thread.join()

    def _work(self) -> None:
        _lower_priority()
        queue, idle = self._queue, self._idle
        while (work := queue.get()) is not None:
            fn, loop, settle, tenant, result = work
            value: Any = None
            exc: BaseException | None = None
            try:
                value = fn()
            except BaseException as raised:  # noqa: BLE001 - the caller's to see
                exc = raised
            del work, fn
            try:
                loop.call_soon_threadsafe(settle, tenant, result, value, exc)
            except RuntimeError:  # its loop is closed: nobody waits any more
                pass
            del value, exc, result
            idle.append(None)


_pools: weakref.WeakSet[_Pool] = weakref.WeakSet()


def _close_pools() -> None:
    """At exit, before daemon threads are stopped wherever they are: a crossing running on a
    guest thread ends first (as ``ThreadPoolExecutor`` waits for its threads), so no thread is
    torn down inside wasm."""
    for pool in list(_pools):
        pool.close(wait=True)


threading._register_atexit(_close_pools)  # type: ignore[attr-defined]  # as concurrent.futures does


def _lower_priority() -> None:
    """Lower this guest thread's CPU priority (Linux applies nice levels per thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), GUEST_NICE)
    except (AttributeError, OSError):
        pass
