"""Host streams: bytes a host unit produces over time, read by the guest one chunk per op.

A unit whose answer arrives in pieces (a fetch's response body, a model's tokens) opens a host
stream from an async iterator of bytes with ``open_stream`` and hands the script its handle; the
guest wraps the handle in a ``ReadableStream`` (``guest/prelude/host/streams.js``) whose every
pull is one ``streams.read`` op. Nothing is read ahead of the script: the host holds at most
the chunk being read, so a body of any size streams through a bounded amount of host memory, and
a slow reader slows the source (a socket's flow control does the rest).

The streams of one request live in its table (``HostStreams``, the unit's per-request state) and
are closed with it when the request ends, however it ends; ``streams.cancel`` closes one sooner.
How many may be open at once is capped per request and per tenant (``runtime.host.quotas``),
like pending operations, and each read is a pending operation too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from runtime.host import OpContext, Refused, Unit, always

CHUNK_BYTES = 64 * 1024
"""The most one read answers; a source's larger chunk is handed over in pieces of this size."""


class _Stream:
    """One open stream: its source, the read in progress, and the lock that keeps a read and a
    close apart."""

    __slots__ = ("closed", "lock", "pending", "rest", "source")

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self.source = source
        self.rest = b""  # what a read left of a chunk larger than CHUNK_BYTES
        self.lock = asyncio.Lock()
        self.pending: asyncio.Future[bytes] | None = None  # the source's next chunk, awaited
        self.closed = False

    async def read(self) -> bytes | None:
        """The next chunk, or None at the end or once the stream is closed meanwhile."""
        async with self.lock:
            while not self.rest:  # an empty chunk is no news: wait for the next
                if self.closed:
                    return None
                self.pending = asyncio.ensure_future(anext(self.source))
                try:
                    self.rest = bytes(await self.pending)
                except StopAsyncIteration:
                    return None
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if self.closed and (current is None or not current.cancelling()):
                        return None  # closed while waiting: this read is the end
                    raise
                finally:
                    self.pending = None
            out, self.rest = self.rest[:CHUNK_BYTES], self.rest[CHUNK_BYTES:]
            return out

    async def aclose(self) -> None:
        """Let the source go (a socket closed, an upstream request cancelled), ending a read
        that waits for it."""
        self.closed = True
        if self.pending is not None:
            self.pending.cancel()
        async with self.lock:
            closer = getattr(self.source, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()


class HostStreams:
    """The host streams of one request, by handle; the unit's per-request state."""

    def __init__(self) -> None:
        self._open: dict[int, _Stream] = {}
        self._next = 1
        self._ctx: OpContext | None = None  # whose quota the open streams count against

    def open(self, ctx: OpContext, source: AsyncIterator[bytes]) -> int:
        """Register ``source`` and return its handle; QuotaExceeded past a cap."""
        quota = ctx.quota
        if quota is not None:
            why = quota.refuse_host_stream(len(self._open))
            if why is not None:
                raise why
            quota.host_streams += 1
        self._ctx = ctx
        handle = self._next
        self._next += 1
        self._open[handle] = _Stream(source)
        return handle

    def _take(self, handle: Any) -> _Stream | None:
        stream = self._open.pop(handle, None) if isinstance(handle, int) else None
        if stream is not None and self._ctx is not None and self._ctx.quota is not None:
            self._ctx.quota.host_streams -= 1
        return stream

    async def read(self, handle: Any) -> bytes | None:
        """The next chunk of the stream ``handle``, or None once it has ended (then it is
        closed); a source's error rejects the read and closes the stream."""
        stream = self._open.get(handle) if isinstance(handle, int) else None
        if stream is None:
            raise Refused(f"no open host stream {handle!r} in this request (ended or cancelled)")
        if stream.lock.locked():
            raise Refused(f"host stream {handle} is already being read: read one chunk at a time")
        try:
            chunk = await stream.read()
        except BaseException:
            if self._take(handle) is stream:
                await asyncio.shield(stream.aclose())
            raise
        if chunk is None and self._take(handle) is stream:
            await stream.aclose()
        return chunk

    async def cancel(self, handle: Any) -> None:
        """Close the stream ``handle`` now (the script cancelled its body); unknown: nothing."""
        stream = self._take(handle)
        if stream is not None:
            await stream.aclose()

    async def aclose(self) -> None:
        """Close every stream still open: the request has ended."""
        streams = [s for h in list(self._open) if (s := self._take(h)) is not None]
        await asyncio.gather(*(s.aclose() for s in streams))


def open_stream(ctx: OpContext, source: AsyncIterator[bytes]) -> int:
    """Open a host stream for the request ``ctx`` asks for; what a unit hands the script.

    The request's table is made here when the unit opening the stream is the request's first
    user of streams, so any unit can open one without the guest having read anything yet.
    """
    table = ctx.state.get(UNIT.name)
    if table is None:
        table = ctx.state[UNIT.name] = HostStreams()
    assert isinstance(table, HostStreams)
    return table.open(ctx, source)


def _table(ctx: OpContext) -> HostStreams:
    table = ctx.state[UNIT.name]
    assert isinstance(table, HostStreams)
    return table


async def read(args: dict[str, Any], ctx: OpContext) -> bytes | None:
    """``streams.read {"handle"}``: the next chunk (bytes, at most 64 KiB), or ``null`` at the
    end. A handle not open in this request is refused."""
    return await _table(ctx).read(args.get("handle"))


async def cancel(args: dict[str, Any], ctx: OpContext) -> None:
    """``streams.cancel {"handle"}``: closes the stream (its source is let go); ``null``."""
    await _table(ctx).cancel(args.get("handle"))


UNIT = Unit(
    name="streams",
    granted_by="every script may read the host streams its own requests opened",
    ops={"read": read, "cancel": cancel},
    grant=always,
    request_state=HostStreams,
)
