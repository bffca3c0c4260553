"""Per-tenant request logs: one JSON object per line in `{data}/logs/{subdomain}-{execId}.log`.

What a line holds grows with the script's `@log-level`:

| level    | request line                                               | console output kept     |
|----------|------------------------------------------------------------|-------------------------|
| none     | nothing is written                                         | –                       |
| minimal  | time, request id, script, method, path, status, duration   | error                   |
| standard | + query, client ip, error                                  | log, info, warn, error  |
| full     | + request headers and body, response size                  | log, info, warn, error  |
| debug    | + response headers                                         | everything (+ debug)    |

`@log-request-body` adds the body (first 64 KiB, as text) at any level. Console lines keep their
level beside the line's time, script and request id; terminal control sequences (colours, cursor
moves, OSC titles) are stripped from them, so reading a log in a terminal shows text, never
commands. Secrets are redacted from the finished line, so no field — headers, query, console
output, error text — can leak one.

The request path only queues what it knows (`Entry`); lines are rendered, redacted and written
in batches, at most `FLUSH_INTERVAL_S` after the request or once `FLUSH_LINES` wait: one write
per batch instead of one per request, and a batch is rendered in one loop, its code and data in
the caches, rather than in each request's turn (`benches/observe.py` measures the difference
whole requests see). Entries hold what their request held (its body among them) until then.
Closing the log (server shutdown) writes whatever is still pending.
A file past `rotate_bytes` is rotated (`observe.logfiles`): renamed aside, compressed with zstd
off the event loop, and the tenant's oldest rotated files removed while its logs take more than
`disk_bytes`, so a script logging in a loop costs its own history, never the disk.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from runtime.compiler.magic import LOG_LEVELS
from runtime.observe import logfiles
from runtime.observe.redact import CREDENTIAL_HEADERS, REDACTED, Redactor
from runtime.sandbox.types import LogRecord

_RANK = {level: rank for rank, level in enumerate(LOG_LEVELS)}
CONSOLE_KEPT = {
    "minimal": frozenset({"error"}),
    "standard": frozenset({"log", "info", "warn", "error"}),
    "full": frozenset({"log", "info", "warn", "error"}),
    "debug": frozenset({"debug", "log", "info", "warn", "error"}),
}
BODY_LOGGED = 64 * 1024
FLUSH_INTERVAL_S = 0.1
FLUSH_LINES = 256
"""Queued lines past this many are written at once, so a burst never piles up in memory."""
ROTATE_BYTES = 8 * 1024 * 1024
DISK_BYTES = 64 * 1024 * 1024
COMPRESS_DELAY_S = 0.5
"""How long a rotated file is left alone before it is compressed: a process that had a batch in
flight when another renamed the file (a stat and a write apart) has finished writing it by then."""

log = logging.getLogger("wexec.logs")


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
    request_id: str = ""


_CONTROL = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[PX^_][^\x1b]*(?:\x1b\\)?|[ -/]*[0-~])?"
    r"|\x9b[0-?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)
"""Terminal control: CSI, OSC, DCS/SOS/PM/APC strings and other escapes (7- and 8-bit), and the
C0/C1 control characters other than tab and newline."""


def plain(text: str) -> str:
    """`text` without terminal control sequences (a console line as a terminal would not act on)."""
    return _CONTROL.sub("", text) if not text.isprintable() else text


def render(entry: Entry, level: str, with_body: bool) -> dict[str, Any] | None:
    """The log record for `entry` at `level`; None when nothing is logged."""
    rank = _RANK[level]
    if rank == 0:
        return None
    record: dict[str, Any] = {
        "time": _timestamp(entry.started_ns),
        "id": entry.request_id,
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
        console = [{"level": r.level, "msg": plain(r.message)} for r in entry.console
                   if r.level in kept]
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
    if (with_body or rank >= 3) and entry.body:
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
    """Appends request records to each tenant's log file, opened on first use, rotated by size."""

    def __init__(
        self, logs_dir: Path, rotate_bytes: int = ROTATE_BYTES, disk_bytes: int = DISK_BYTES
    ) -> None:
        self.logs_dir = logs_dir
        self.rotate_bytes = rotate_bytes
        self.disk_bytes = disk_bytes
        self._files: dict[str, int] = {}
        self._queued: list[tuple[str, Entry, str, bool, Redactor | None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._failed: set[str] = set()  # tenants whose last write failed (said once)

    def add(self, tenant_slug: str, entry: Entry, level: str, with_body: bool,
            redact: Redactor | None) -> None:
        """Queue one request's line (`render(entry, level, with_body)`); `redact` is None when
        the request has no secret to hide."""
        queued = self._queued
        queued.append((tenant_slug, entry, level, with_body, redact))
        if len(queued) >= FLUSH_LINES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self.flush)

    def flush(self) -> None:
        """Render what is queued and write each tenant's lines."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        queued, self._queued = self._queued, []
        batches: dict[str, bytearray] = {}
        for tenant_slug, entry, level, with_body, redact in queued:
            record = render(entry, level, with_body)
            if record is None:
                continue
            if redact is None:
                line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
            else:
                line = (redact(orjson.dumps(record).decode()) + "\n").encode()
            batch = batches.get(tenant_slug)
            if batch is None:
                batch = batches[tenant_slug] = bytearray()
            batch += line
        for tenant_slug, lines in batches.items():
            try:
                self._append(tenant_slug, lines)
            except OSError as exc:  # a full or read-only disk costs log lines, never requests
                if tenant_slug not in self._failed:
                    self._failed.add(tenant_slug)
                    log.error("request log of %s: lines lost: %s", tenant_slug, exc)
            else:
                self._failed.discard(tenant_slug)

    def close(self) -> None:
        self.flush()
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()

    def _append(self, tenant_slug: str, lines: bytearray) -> None:
        fd = self._fd(tenant_slug)
        # One write of whole lines with O_APPEND: lines from several worker processes
        # never interleave.
        os.write(fd, lines)
        logfiles.rotated(self.logs_dir, tenant_slug, fd, self.rotate_bytes, self.disk_bytes,
                         COMPRESS_DELAY_S)

    def _fd(self, tenant_slug: str) -> int:
        """The open file that has the tenant's current name: checked before each batch, since
        any process may have rotated it (two system calls per batch, not per line)."""
        path = self.logs_dir / logfiles.current_name(tenant_slug)
        fd = self._files.get(tenant_slug)
        if fd is not None:
            try:
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        fd = self._files[tenant_slug] = os.open(
            path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600
        )
        return fd
