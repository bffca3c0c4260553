"""What goes into a script run and what comes out of it."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from runtime.types import Query

if TYPE_CHECKING:
    from runtime.host.quotas import TenantQuota


@dataclass(slots=True)
class Invocation:
    """One request as the guest sees it (the ``req`` and ``metadata`` of a script)."""

    method: str
    path: str
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    query: Query = field(default_factory=dict)
    params: Query = field(default_factory=dict)
    body: bytes = b""
    ip: str = ""
    hops: int = 0  # scripts this request already passed through (a fetch's x-wexec-hops)
    trace: contextvars.Context | None = None  # where its host ops' spans go (observe.tracing)
    trigger: str = "http"  # metadata.trigger: "http", or "schedule" for a run of its @schedule
    begun: Any = None  # (WorkerDriver, InFlight): already started by ``nested``, to follow


@dataclass(slots=True)
class LogRecord:
    level: str  # debug | info | warn | error | log
    message: str


LINE_BYTES = 16
"""What a console line costs beyond its text: its share of the record around it."""


class ConsoleLog:
    """What one request (or a driver, for output no request owns) keeps of the console.

    Lines are kept while the request is under its cap and the tenant under its budget
    (``runtime.host.quotas``); the rest are counted in one record, added where the first was
    dropped and updated in place, so whoever reads ``records`` (the request log, even of a
    stream still running) sees the count.
    """

    __slots__ = ("by_request", "bytes", "dropped", "dropped_bytes", "dropped_lines", "records")

    def __init__(self, records: list[LogRecord] | None = None) -> None:
        self.records: list[LogRecord] = [] if records is None else records
        self.bytes = 0
        self.dropped: LogRecord | None = None
        self.dropped_lines = 0
        self.dropped_bytes = 0
        self.by_request = True  # whether the last line dropped was over the request's cap

    def add(self, record: LogRecord, quota: TenantQuota) -> bool:
        """Keep ``record`` if the caps allow, else count it; False if dropped (then call
        ``note`` once the batch of lines is in)."""
        message = record.message
        n = LINE_BYTES + (
            len(message) if message.isascii() else len(message.encode("utf-8", "surrogatepass"))
        )
        cap = quota.limits.log_bytes_per_request
        if self.bytes + n <= cap and quota.take_log_bytes(n):
            self.bytes += n
            self.records.append(record)
            return True
        self.dropped_lines += 1
        self.dropped_bytes += n
        self.by_request = self.bytes + n > cap
        if self.dropped is None:
            self.dropped = LogRecord("warn", "")
            self.records.append(self.dropped)
        return False

    def note(self, quota: TenantQuota) -> None:
        """Bring the record of dropped lines up to date."""
        assert self.dropped is not None
        limits = quota.limits
        why = (
            f"this request's cap of {limits.log_bytes_per_request} bytes (WEXEC_MAX_LOG_BYTES)"
            if self.by_request else
            f"the tenant's budget of {limits.log_bytes_per_tenant_minute} bytes per minute "
            "(WEXEC_TENANT_LOG_BYTES_PER_MINUTE)"
        )
        self.dropped.message = (
            f"[wexec] {self.dropped_lines} console lines ({self.dropped_bytes} bytes) dropped: "
            f"past {why}"
        )

class BodyStream:
    """A response body that arrives while the script still runs: its chunks, in order.

    The driver feeds it as crossings report chunks and ends it, cleanly or with the script's
    error; whoever sends the response iterates it, and ``aclose``s it when done or when it gives
    up early (a client that went away), which runs the callbacks given to ``on_close`` once.
    Feeding may happen on a guest thread (a first crossing), so once bound to its event loop the
    stream hands items over through it.
    """

    __slots__ = ("__weakref__", "_buffered", "_closers", "_ended", "_loop", "_queue", "_taken")

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ended = False
        self._closers: list[Callable[[], None]] = []
        self._buffered = 0  # bytes fed and not yet taken by the consumer
        self._taken: asyncio.Event | None = None  # set whenever the consumer takes a chunk

    @property
    def buffered(self) -> int:
        return self._buffered

    async def drained(self, limit: int) -> None:
        """Return once at most ``limit`` bytes wait for the consumer (or the stream is over)."""
        while self._buffered > limit and not self._ended:
            if self._taken is None:
                self._taken = asyncio.Event()
            self._taken.clear()
            await self._taken.wait()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Name the loop that consumes the stream, before anyone waits on it."""
        self._loop = loop

    def feed(self, chunk: bytes) -> None:
        if chunk and not self._ended:
            self._buffered += len(chunk)
            self._put(chunk)

    def end(self, error: BaseException | None = None) -> None:
        """No more chunks; with ``error`` the consumer sees it raised after those already fed."""
        if not self._ended:
            self._ended = True
            self._put(error)

    def cut(self, error: BaseException) -> None:
        """End with ``error`` at once, letting go of the chunks the consumer has not taken
        (on the consumer's loop, or before it is bound)."""
        if self._ended:
            return
        while not self._queue.empty():
            self._queue.get_nowait()
        self._buffered = 0
        self.end(error)

    def on_close(self, fn: Callable[[], None]) -> None:
        self._closers.append(fn)

    def __aiter__(self) -> BodyStream:
        return self

    async def __anext__(self) -> bytes:
        if self._ended and self._queue.empty():
            raise StopAsyncIteration
        item = await self._queue.get()
        if isinstance(item, bytes):
            self._buffered -= len(item)
            if self._taken is not None:
                self._taken.set()
            return item
        await self.aclose()
        if item is None:
            raise StopAsyncIteration
        raise item

    async def aclose(self) -> None:
        self._ended = True
        if self._taken is not None:
            self._taken.set()
        closers, self._closers = self._closers, []
        for fn in closers:
            fn()

    def _put(self, item: bytes | BaseException | None) -> None:
        loop = self._loop
        if loop is None or _running_loop() is loop:
            self._queue.put_nowait(item)
        else:
            loop.call_soon_threadsafe(self._queue.put_nowait, item)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@dataclass(slots=True)
class Result:
    """The response a script produced, with what it logged on the way.

    A streamed response has its head here and its body in ``stream`` (``body`` stays empty);
    its ``logs`` keep growing until the stream ends.
    """

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    logs: list[LogRecord] = field(default_factory=list)
    stream: BodyStream | None = None
    # What the request cost, for monitor/ (runtime.observe.metrics): time in the sandbox, whether
    # it ran the script's top level (a cold start), and its instance's linear memory at the end.
    sandbox_ms: float = 0.0
    cold: bool = False
    memory: int = 0
