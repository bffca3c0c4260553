"""What keeps schedules right under `wexec serve --workers N`, where every process runs the same
timers: a tick is claimed by exactly one process, and a script runs at most once at a time.

Ticks are rows of one SQLite table in the data dir: the process whose insert succeeds owns the
tick, the others see it taken (SQLite's own file locking orders the inserts). The last tick of
a script is also how a restarted server tells which ticks passed while it was down.

A run holds an `flock` on a file named for its script for as long as it runs. flock belongs to
an open file, not a process, so the lock refuses a second run in the same process as in another;
the kernel drops it if the process dies mid-run.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import threading
from datetime import datetime
from pathlib import Path

from runtime.schedules.times import iso, parse_iso

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ticks (
    tenant TEXT NOT NULL, script TEXT NOT NULL, tick TEXT NOT NULL, outcome TEXT NOT NULL,
    pid INTEGER NOT NULL, PRIMARY KEY (tenant, script, tick)
) WITHOUT ROWID
"""


class Ticks:
    """The claimed ticks of every tenant's schedules, shared by the processes of a data dir."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()  # one connection, used from the event loop's threads
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)

    def claim(self, tenant: str, script: str, tick: datetime, outcome: str) -> bool:
        """Whether this call took `tick` for `script` (False: another process, or an earlier
        call, has it). `outcome` says what the claim is for: `fire` or `missed`."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO ticks VALUES (?, ?, ?, ?, ?)",
                (tenant, script, iso(tick), outcome, os.getpid()))
            return cursor.rowcount == 1

    def last(self, tenant: str, script: str) -> datetime | None:
        """The latest tick anyone claimed for `script`."""
        with self._lock:
            row = self._db.execute("SELECT MAX(tick) FROM ticks WHERE tenant = ? AND script = ?",
                                   (tenant, script)).fetchone()
        return parse_iso(row[0]) if row and row[0] else None

    def prune(self, before: datetime) -> None:
        """Forget ticks older than `before`, keeping each script's latest (see `last`)."""
        with self._lock:
            self._db.execute(
                "DELETE FROM ticks WHERE tick < ? AND tick < (SELECT MAX(t.tick) FROM ticks t "
                "WHERE t.tenant = ticks.tenant AND t.script = ticks.script)", (iso(before),))

    def close(self) -> None:
        with self._lock:
            self._db.close()


class RunLock:
    """Held while a script's run goes on, in whichever process runs it."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def take(cls, folder: Path, tenant: str, script: str) -> RunLock | None:
        """The lock for `script`, or None while a run of it is going on."""
        folder.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256(f"{tenant}\0{script}".encode()).hexdigest()[:32]
        fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return cls(fd)

    def release(self) -> None:
        os.close(self._fd)
