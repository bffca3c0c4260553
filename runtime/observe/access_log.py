"""Per-tenant request logs: one JSON object per line in `{data}/logs/{subdomain}-{execId}.log`.

What a line holds grows with the script's `@log-level`:

| level    | request line                                          | console output kept   |
|----------|-------------------------------------------------------|-----------------------|
| none     | nothing is written                                    | –                     |
| minimal  | time, script, method, path, status, duration          | –                     |
| standard | + query, client ip, error                             | warn, error           |
| full     | + request headers, response size                      | log, info, warn, error|
| debug    | + response headers                                    | everything            |

`@log-request-body` adds the body (first 64 KiB, as text). Secrets are redacted from the finished
line, so no field — headers, query, console output, error text — can leak one.

Lines reach the file in batches, at most `FLUSH_INTERVAL_S` after the request: one write per batch
instead of one per request. Closing the log (server shutdown) writes whatever is still pending.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from runtime.compiler.magic import LOG_LEVELS
from runtime.observe.redact import CREDENTIAL_HEADERS, REDACTED, Redactor
from runtime.sandbox.types import LogRecord

_RANK = {level: rank for rank, level in enumerate(LOG_LEVELS)}
CONSOLE_KEPT = {
    "standard": frozenset({"warn", "error"}),
    "full": frozenset({"log", "info", "warn", "error"}),
    "debug": frozenset({"debug", "log", "info", "warn", "error"}),
}
BODY_LOGGED = 64 * 1024
FLUSH_INTERVAL_S = 0.1
FLUSH_BYTES = 64 * 1024
"""Pending lines past this size are written at once, so a burst never piles up in memory."""


@dataclass(slots=True)
class Entry:
    """What the request path knows about one request when it finishes."""

    script: str
    method: str
    path: str
    status: int
    started_ns: int  # time.time_ns()
    duration_ms: float  # to the microsecond
    query: dict[str, Any] = field(default_factory=dict)
    ip: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_size: int = 0
    console: list[LogRecord] = field(default_factory=list)
    error: str | None = None


def render(entry: Entry, level: str, with_body: bool) -> dict[str, Any] | None:
    """The log record for `entry` at `level`; None when nothing is logged."""
    rank = _RANK[level]
    if rank == 0:
        return None
    record: dict[str, Any] = {
        "time": _timestamp(entry.started_ns),
        "script": entry.script,
        "method": entry.method,
        "path": entry.path,
        "status": entry.status,
        "ms": entry.duration_ms,
    }
    if rank >= 2:
        record["query"] = entry.query
        record["ip"] = entry.ip
        if entry.error:
            record["error"] = entry.error
        if entry.console:
            kept = CONSOLE_KEPT[level]
            console = [{"level": r.level, "msg": r.message} for r in entry.console if r.level in kept]
            if console:
                record["console"] = console
    if rank >= 3:
        record["headers"] = {
            k: (REDACTED if k in CREDENTIAL_HEADERS or k == "cookie" else v)
            for k, v in entry.headers.items()
        }
        record["response_size"] = entry.response_size
    if rank >= 4:
        record["response_headers"] = [
            [k, REDACTED if k == "set-cookie" else v] for k, v in entry.response_headers
        ]
    if with_body and entry.body:
        record["body"] = entry.body[:BODY_LOGGED].decode("utf-8", "replace")
        if len(entry.body) > BODY_LOGGED:
            record["body_truncated"] = len(entry.body)
    return record


class _IsoMillis:
    """ISO 8601 UTC text of the millisecond a `time.time_ns()` falls in.

    Requests arrive many to a millisecond under load, so the last text is reused, and the date
    and time of day are formatted once per second: a fifth of `datetime`'s cost per request.
    """

    __slots__ = ("_ms", "_second", "_second_text", "_text")

    def __init__(self) -> None:
        self._ms = self._second = -1
        self._text = self._second_text = ""

    def __call__(self, ns: int) -> str:
        ms = ns // 1_000_000
        if ms != self._ms:
            second, milli = divmod(ms, 1000)
            if second != self._second:
                self._second = second
                self._second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
            self._ms, self._text = ms, f"{self._second_text}{milli:03d}+00:00"
        return self._text


_timestamp = _IsoMillis()


class AccessLog:
    """Appends request records to each tenant's log file, opened on first use."""

    def __init__(self, logs_dir: Path) -> None:
        self.logs_dir = logs_dir
        self._files: dict[str, int] = {}
        self._pending: dict[str, bytearray] = {}
        self._pending_bytes = 0
        self._timer: asyncio.TimerHandle | None = None

    def write(self, tenant_slug: str, record: dict[str, Any], redact: Redactor | None) -> None:
        """Queue one line; `redact` is None when the request has no secret to hide."""
        if redact is None:
            line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        else:
            line = (redact(orjson.dumps(record).decode()) + "\n").encode()
        pending = self._pending.get(tenant_slug)
        if pending is None:
            pending = self._pending[tenant_slug] = bytearray()
        pending += line
        self._pending_bytes += len(line)
        if self._pending_bytes >= FLUSH_BYTES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending, self._pending_bytes = self._pending, {}, 0
        for tenant_slug, lines in pending.items():
            # One write of whole lines with O_APPEND: lines from several worker processes
            # never interleave.
            os.write(self._fd(tenant_slug), lines)

    def close(self) -> None:
        self.flush()
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()

    def _fd(self, tenant_slug: str) -> int:
        fd = self._files.get(tenant_slug)
        if fd is None:
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            path = self.logs_dir / f"{tenant_slug}.log"
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._files[tenant_slug] = fd
        return fd
