"""Reading a tenant's logs back: read, search, follow, clear (what `api/logs.py` serves).

Everything here takes files `logfiles` has already confined to the tenant. Reading and
searching go through `logfiles.lines`, so rotated, compressed files read like the current one.
Regular expressions are RE2's (`google-re2`): matching takes time linear in the text whatever
the pattern, so no pattern can hang the server; a search also stops at `SEARCH_BUDGET_S` and
says so. Searches and reads run on a thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import re2

from runtime.observe.logfiles import LogFile, current_name, lines

SEARCH_BUDGET_S = 10.0
"""Longest a search runs; past it, it answers with what it found and `timedOut`."""
REGEX_MEMORY = 8 * 1024 * 1024
"""What RE2 may use for one compiled pattern: a huge pattern is refused, not built."""
FOLLOW_POLL_S = 0.2
FOLLOW_MAX_S = 600.0
"""How long one follow stream lasts; an SSE client reconnects (EventSource does by itself).
Servers wait for open responses when asked to stop, so a stream that never ended would hold a
stopping process until it is killed."""
HEARTBEAT_S = 15.0
"""An SSE comment this often, so a client that went away is noticed while nothing is logged."""


class BadPattern(ValueError):
    """A regular expression RE2 cannot compile; its text is RE2's reason."""


@dataclass(frozen=True, slots=True)
class Matcher:
    """What a line must contain (`text`, a plain substring) and match (`pattern`, RE2)."""

    text: str | None = None
    pattern: Any = None
    case_sensitive: bool = False

    @classmethod
    def of(cls, text: str | None, regex: str | None, case_sensitive: bool) -> Matcher:
        pattern = None
        if regex:
            options = re2.Options()
            options.case_sensitive = case_sensitive
            options.log_errors = False
            options.max_mem = REGEX_MEMORY
            try:
                pattern = re2.compile(regex, options)
            except re2.error as exc:
                reason = exc.args[0] if exc.args else exc
                if isinstance(reason, bytes):
                    reason = reason.decode("utf-8", "replace")
                raise BadPattern(str(reason)) from None
        if text and not case_sensitive:
            text = text.casefold()
        return cls(text or None, pattern, case_sensitive)

    def __call__(self, line: str) -> bool:
        if self.text is not None:
            haystack = line if self.case_sensitive else line.casefold()
            if self.text not in haystack:
                return False
        return self.pattern is None or self.pattern.search(line) is not None


def parsed(line: str) -> Any:
    """A log line as the JSON object it is, or its text if it is not one."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return line


def read(file: LogFile, count: int, tail: bool, request_id: str | None,
         search: str | None) -> list[Any]:
    """The first (or, with `tail`, the last) `count` lines of `file` that belong to request
    `request_id` and contain `search` (case-insensitive)."""
    match = Matcher.of(search, None, False)
    needle = orjson.dumps(request_id).decode() if request_id else None
    kept: deque[Any] | list[Any] = deque(maxlen=count) if tail else []
    for line in lines(file.path):
        if needle is not None and needle not in line:
            continue
        if not match(line):
            continue
        entry = parsed(line)
        if request_id and not (isinstance(entry, dict) and entry.get("id") == request_id):
            continue
        kept.append(entry)
        if not tail and len(kept) >= count:
            break
    return list(kept)


@dataclass(slots=True)
class Found:
    matches: list[dict[str, Any]] = field(default_factory=list)
    searched: list[str] = field(default_factory=list)
    truncated: bool = False
    timed_out: bool = False


def search(files: Iterable[LogFile], match: Matcher, limit: int,
           budget_s: float = SEARCH_BUDGET_S) -> Found:
    """Lines of `files` (in order) that `match`, at most `limit`, within `budget_s`."""
    found = Found()
    deadline = time.monotonic() + budget_s
    for file in files:
        found.searched.append(file.name)
        for number, line in enumerate(lines(file.path), 1):
            if number % 4096 == 0 and time.monotonic() > deadline:
                found.timed_out = True
                return found
            if match(line):
                if len(found.matches) >= limit:
                    found.truncated = True
                    return found
                found.matches.append({"file": file.name, "line": number, "entry": parsed(line)})
    return found


def clear(files: Iterable[LogFile], older_than_days: float | None) -> list[LogFile]:
    """Remove rotated files and empty the current one (other processes keep appending to it);
    with `older_than_days`, only files last written before then. Returns what was cleared."""
    cutoff = None if older_than_days is None else time.time() - older_than_days * 86400
    cleared = []
    for file in files:
        if cutoff is not None and file.modified >= cutoff:
            continue
        try:
            if file.rotated:
                file.path.unlink()
            else:
                os.truncate(file.path, 0)
        except FileNotFoundError:
            continue
        cleared.append(file)
    return cleared


async def follow(logs_dir: Path, slug: str, name: str, history: list[Any],
                 follow: bool) -> AsyncIterator[bytes]:
    """Server-sent events: `history` (lines already there), then, with `follow`, every line
    written to the file from now on, across rotations, until the client goes away."""
    for entry in history:
        yield _event(entry)
    if not follow:
        return
    path = logs_dir / name
    handle = _open_at_end(path)
    partial = b""
    quiet_since = time.monotonic()
    until = quiet_since + FOLLOW_MAX_S
    try:
        while time.monotonic() < until:
            await asyncio.sleep(FOLLOW_POLL_S)
            chunk = handle.read() if handle is not None else b""
            if name == current_name(slug) and _replaced(path, handle):
                # rotated or cleared: the rest of the old file, then the new one from its start
                if handle is not None:
                    chunk += handle.read()
                    handle.close()
                handle = _open(path)
            if not chunk:
                if time.monotonic() - quiet_since >= HEARTBEAT_S:
                    quiet_since = time.monotonic()
                    yield b": keep-alive\n\n"
                continue
            quiet_since = time.monotonic()
            *complete, partial = (partial + chunk).split(b"\n")
            for line in complete:
                if line:
                    yield _event(parsed(line.decode("utf-8", "replace")))
    finally:
        if handle is not None:
            handle.close()


def _event(entry: Any) -> bytes:
    return b"data: " + orjson.dumps(entry) + b"\n\n"


def _open(path: Path) -> Any:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        return None


def _open_at_end(path: Path) -> Any:
    handle = _open(path)
    if handle is not None:
        handle.seek(0, os.SEEK_END)
    return handle


def _replaced(path: Path, handle: Any) -> bool:
    """Whether `path` no longer names the open file, or the file was emptied under us."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    if handle is None:
        return True
    held = os.fstat(handle.fileno())
    return st.st_ino != held.st_ino or st.st_size < handle.tell()
