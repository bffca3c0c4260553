"""A tenant's schedule history: one JSON line per fire, skip or missed tick, in
`{data}/schedules/{subdomain}-{execId}/fires.log`.

Every process serving the data dir appends to the same file (one `write` of one line on an
`O_APPEND` descriptor, so lines from several processes never interleave). Past `ROTATE_BYTES` the
file is renamed `fires.log.1` (the older ones shifting up, `KEEP` kept), under an `flock` so two
processes never rotate it twice. History is small (a line per tick at most), so rotated files
stay plain text.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

ROTATE_BYTES = 1024 * 1024
KEEP = 5
NAME = "fires.log"


@dataclass(frozen=True, slots=True)
class FiresLog:
    """The fires.log of one tenant."""

    folder: Path

    def append(self, record: dict[str, Any]) -> None:
        """Add one record; rotates first when the file is past `ROTATE_BYTES`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        line = orjson.dumps(record) + b"\n"
        path = self.folder / NAME
        with _locked(self.folder):
            try:
                if path.stat().st_size >= ROTATE_BYTES:
                    self.rotate()
            except FileNotFoundError:
                pass
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def read(self, *, include_rotated: bool) -> list[dict[str, Any]]:
        """Every record, oldest first; a line that does not parse (cut by a crash) is skipped."""
        names = [f"{NAME}.{n}" for n in range(KEEP, 0, -1)] if include_rotated else []
        records: list[dict[str, Any]] = []
        for name in [*names, NAME]:
            try:
                data = (self.folder / name).read_bytes()
            except FileNotFoundError:
                continue
            for line in data.splitlines():
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
        return records

    def rotate(self) -> None:
        """Start a new file: fires.log becomes fires.log.1, the oldest beyond `KEEP` goes.
        The caller holds the lock (`append`), or no other process writes (tests, tools)."""
        for n in range(KEEP - 1, 0, -1):
            older = self.folder / f"{NAME}.{n}"
            if older.exists():
                older.replace(self.folder / f"{NAME}.{n + 1}")
        (self.folder / NAME).replace(self.folder / f"{NAME}.1")


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    fd = os.open(folder / f"{NAME}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
