"""Limits on what one request, one script and one process take: body size, concurrency, load.

`@concurrent` caps how many runs of one script are in progress; waiting callers are admitted
strictly in arrival order (`@concurrent false` is a FIFO of one). Past `max_queue` waiters, and
past `max_inflight` requests in the process, the server sheds load with 503 rather than letting
latency grow without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.types import Receive

from runtime.http.errors import body_too_large, overloaded


async def read_body(receive: Receive, content_length: str | None, limit: int) -> bytes:
    """The whole request body; 413 as soon as it is known to exceed `limit`.

    A declared Content-Length past the limit is refused before anything is read.
    """
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError:
            declared = 0
        if declared > limit:
            raise body_too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise body_too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class FifoLimiter:
    """At most `limit` holders at once; waiters admitted in arrival order, at most `max_queue`."""

    def __init__(self, limit: int, max_queue: int, script: str) -> None:
        self.limit = limit
        self._max_queue = max_queue
        self._script = script
        self._active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    async def acquire(self) -> None:
        """Take a slot; pair with ``release``, for a slot held past one block (a stream)."""
        if self._active < self.limit and not self._waiters:
            self._active += 1
            return
        if len(self._waiters) >= self._max_queue:
            raise overloaded(
                f"{self._script} already has {len(self._waiters)} requests waiting on its "
                f"@concurrent {self.limit}"
            )
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # release hands its slot over directly: _active stays counted
        except asyncio.CancelledError:
            if not waiter.cancelled():
                self.release()  # the slot arrived as we were cancelled: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._active -= 1


class LoadShedder:
    """Counts requests in progress in this process; refuses new ones past the cap."""

    def __init__(self, max_inflight: int) -> None:
        self.max_inflight = max_inflight
        self.inflight = 0

    def enter(self) -> None:
        if self.inflight >= self.max_inflight:
            raise overloaded(f"the server is at its limit of {self.max_inflight} requests in progress")
        self.inflight += 1

    def leave(self) -> None:
        self.inflight -= 1
