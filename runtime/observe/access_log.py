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
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtime.http.auth import CREDENTIAL_HEADERS, REDACTED, Redactor
from runtime.sandbox.types import LogRecord

LEVELS = ("none", "minimal", "standard", "full", "debug")
CONSOLE_KEPT = {
    "standard": frozenset({"warn", "error"}),
    "full": frozenset({"log", "info", "warn", "error"}),
    "debug": frozenset({"debug", "log", "info", "warn", "error"}),
}
BODY_LOGGED = 64 * 1024


@dataclass(slots=True)
class Entry:
    """What the request path knows about one request when it finishes."""

    script: str
    method: str
    path: str
    status: int
    started: float  # time.time()
    duration_ms: float
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
    rank = LEVELS.index(level)
    if rank == 0:
        return None
    record: dict[str, Any] = {
        "time": datetime.fromtimestamp(entry.started, UTC).isoformat(timespec="milliseconds"),
        "script": entry.script,
        "method": entry.method,
        "path": entry.path,
        "status": entry.status,
        "ms": round(entry.duration_ms, 3),
    }
    if rank >= 2:
        record["query"] = entry.query
        record["ip"] = entry.ip
        if entry.error:
            record["error"] = entry.error
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


class AccessLog:
    """Appends request records to each tenant's log file, opened on first use."""

    def __init__(self, logs_dir: Path) -> None:
        self.logs_dir = logs_dir
        self._files: dict[str, int] = {}

    def write(self, tenant_slug: str, record: dict[str, Any], redact: Redactor) -> None:
        line = redact(json.dumps(record, separators=(",", ":"), ensure_ascii=False)) + "\n"
        fd = self._files.get(tenant_slug)
        if fd is None:
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            path = self.logs_dir / f"{tenant_slug}.log"
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._files[tenant_slug] = fd
        # One write per line with O_APPEND: lines from several worker processes never interleave.
        os.write(fd, line.encode())

    def close(self) -> None:
        for fd in self._files.values():
            os.close(fd)
        self._files.clear()
