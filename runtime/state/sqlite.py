"""Shared state in one SQLite file (WAL): a row per tenant and top-level key.

WAL lets the processes of ``--workers N`` read while one writes; ``synchronous=NORMAL`` makes a
commit a write to the log, not a flush to disk (a power cut may lose the last commits, never
corrupt the file). The log is folded back into the file by ``maintain`` (the store's background
thread), never by a commit: that is when SQLite flushes to disk, and a commit may be an
``update`` on a request's path. Every write takes the next ``seq`` of the whole file under the write lock, so
``changes`` finds what others wrote by ``seq`` alone, and only after ``PRAGMA data_version``
says another connection committed.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from runtime.state.backend import Row

SCHEMA = """
CREATE TABLE IF NOT EXISTS shared (
    tenant TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB,
    version INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (tenant, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS shared_by_seq ON shared (seq);
"""

_UPSERT = (
    "INSERT INTO shared (tenant, key, value, version, seq) VALUES (?, ?, ?, 1, ?) "
    "ON CONFLICT (tenant, key) DO UPDATE SET value = excluded.value, "
    "version = shared.version + 1, seq = excluded.seq"
)


class SQLiteBackend:
    """One connection, used by one thread at a time (its own lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA wal_autocheckpoint=0")
            self._db.executescript(SCHEMA)
            self._seen = self._db.execute("SELECT coalesce(max(seq), 0) FROM shared").fetchone()[0]
            self._data_version = self._db.execute("PRAGMA data_version").fetchone()[0]

    def load(self, tenant: str) -> dict[str, bytes]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, value FROM shared WHERE tenant = ? AND value IS NOT NULL", (tenant,)
            ).fetchall()
        return {key: bytes(value) for key, value in rows}

    def write(self, rows: list[Row]) -> None:
        if not rows:
            return
        with self._lock, self._transaction() as seq:
            self._db.executemany(_UPSERT, [(r.tenant, r.key, r.value, seq) for r in rows])
            self._wrote(seq)

    def read(self, tenant: str, key: str) -> tuple[int, bytes | None]:
        with self._lock:
            row = self._db.execute(
                "SELECT version, value FROM shared WHERE tenant = ? AND key = ?", (tenant, key)
            ).fetchone()
        if row is None:
            return 0, None
        return row[0], None if row[1] is None else bytes(row[1])

    def swap(self, tenant: str, key: str, version: int, value: bytes | None) -> bool:
        with self._lock, self._transaction() as seq:
            row = self._db.execute(
                "SELECT version FROM shared WHERE tenant = ? AND key = ?", (tenant, key)
            ).fetchone()
            if (row[0] if row else 0) != version:
                return False
            self._db.execute(_UPSERT, (tenant, key, value, seq))
            self._wrote(seq)
            return True

    def changes(self) -> list[Row]:
        with self._lock:
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if version == self._data_version:
                return []
            self._data_version = version
            rows = self._db.execute(
                "SELECT tenant, key, value, seq FROM shared WHERE seq > ? ORDER BY seq",
                (self._seen,),
            ).fetchall()
        if rows:
            self._seen = rows[-1][3]
        return [Row(t, k, None if v is None else bytes(v)) for t, k, v, _ in rows]

    def maintain(self) -> None:
        """Fold the log back into the file as far as no reader still needs it."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _wrote(self, seq: int) -> None:
        """After this connection wrote ``seq``: if nobody else committed since ``changes`` last
        looked, every row up to it is known here, so ``changes`` need not read them back."""
        if self._db.execute("PRAGMA data_version").fetchone()[0] == self._data_version:
            self._seen = seq

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """``BEGIN IMMEDIATE`` (the file's write lock, so ``seq`` is taken in order) … ``COMMIT``;
    entering gives the seq this transaction writes with."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> int:
        self.db.execute("BEGIN IMMEDIATE")
        seq: int = self.db.execute("SELECT coalesce(max(seq), 0) + 1 FROM shared").fetchone()[0]
        return seq

    def __exit__(self, kind: object, *_: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
