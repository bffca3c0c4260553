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
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol, TypeVar

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
        self._pool = ThreadPoolExecutor(
            threads, thread_name_prefix="wexec-guest", initializer=_lower_priority
        )
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
            done = self._pool.submit(fn)
        except BaseException:
            self._release(tenant)
            raise
        # The tenant's thread is its own until fn returns, even if the caller stops waiting
        # (a timeout): the slot is released when the thread is done, not when the await ends.
        done.add_done_callback(lambda f: loop.call_soon_threadsafe(self._settle, tenant, f, result))
        return await result

    def busy(self, tenant: str) -> int:
        """Threads ``tenant`` holds now."""
        return self._running.get(tenant, 0)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

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

    def _settle(self, tenant: str, done: Future[T], result: asyncio.Future[T]) -> None:
        self._release(tenant)
        if result.cancelled():
            return
        if done.cancelled():  # the pool shut down first
            result.cancel()
            return
        exc = done.exception()
        if exc is not None:
            result.set_exception(exc)
        else:
            result.set_result(done.result())

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


def _lower_priority() -> None:
    """Lower this guest thread's CPU priority (Linux applies nice levels per thread)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), GUEST_NICE)
    except (AttributeError, OSError):
        pass
