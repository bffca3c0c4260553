"""Log files on disk: which they are, rotation, compression, the disk quota, reading them back.

A log is a folder and a stem: `{stem}.log` is the file being written, `{stem}.{UTC time}.log.zst`
the rotated ones (compressed with zstd); a rotated file is `.log` for the moment between its
rename and its compression. A tenant's request log is its slug in the logs folder (`AccessLog`);
its schedule history is `fires` in its own schedules folder (`schedules.fires`). A slug is
letters, digits and `-` only, so the `{slug}.` prefix names one tenant's files and no other's.
Every name a caller gives is checked against that prefix before any path is made from it: a
tenant reads, searches and clears only its own files.

Rotation is shared by every server process writing the same file (`--workers N`): the process
that sees the file past its size takes a lock file, renames the file aside if nobody did so
meanwhile, and every other process writes to the path anew (`append` opens it per line;
`AccessLog` reopens it when its open file is no longer the one there, checked after each batch).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal

import zstandard

ZSTD_LEVEL = 3
"""zstd's default level: about 5x on request logs, at hundreds of MB/s."""
ROTATED_SUFFIXES = (".log.zst", ".log")

FileType = Literal["all", "current", "rotated"]

log = logging.getLogger("wexec.logs")


@dataclass(frozen=True, slots=True)
class LogFile:
    name: str
    path: Path
    size: int
    modified: float  # seconds since the epoch
    rotated: bool

    @property
    def compressed(self) -> bool:
        return self.name.endswith(".zst")


def current_name(slug: str) -> str:
    return f"{slug}.log"


def tenant_files(logs_dir: Path, slug: str, kind: FileType = "all") -> list[LogFile]:
    """The tenant's log files, newest first (the current file, then rotated by time)."""
    prefix = f"{slug}."
    found: list[LogFile] = []
    try:
        entries = list(os.scandir(logs_dir))
    except FileNotFoundError:
        return []
    for entry in entries:
        name = entry.name
        if not name.startswith(prefix) or not entry.is_file(follow_symlinks=False):
            continue
        rotated = name != current_name(slug)
        if rotated and not _is_rotated(name, prefix):
            continue
        if kind == "current" and rotated or kind == "rotated" and not rotated:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # rotated or removed meanwhile
            continue
        found.append(LogFile(name, Path(entry.path), st.st_size, st.st_mtime, rotated))
    found.sort(key=lambda f: (not f.rotated, f.name), reverse=True)
    return found


def _is_rotated(name: str, prefix: str) -> bool:
    """`{slug}.{stamp}.log[.zst]`, the stamp being what `rotate` writes (digits, `T`, `Z`)."""
    for suffix in ROTATED_SUFFIXES:
        if name.endswith(suffix):
            stamp = name[len(prefix):-len(suffix)]
            return bool(stamp) and all(c.isdigit() or c in "TZ" for c in stamp)
    return False


def resolve(logs_dir: Path, slug: str, name: str) -> LogFile | None:
    """The tenant's file called `name` (a bare file name), or None if it has no such file."""
    for found in tenant_files(logs_dir, slug):
        if found.name == name:
            return found
    return None


def lines(path: Path) -> Iterator[str]:
    """The lines of a log file, decompressing a rotated one as it is read (never whole). A
    rotated plain file that was compressed since it was listed is read from its `.zst`."""
    if path.name.endswith(".log") and not path.exists():
        path = path.with_name(path.name + ".zst")  # compressing removes the plain file last
    with open(path, "rb") as raw:
        source: IO[bytes] = (
            zstandard.ZstdDecompressor().stream_reader(raw) if path.name.endswith(".zst") else raw
        )
        for line in io.TextIOWrapper(source, encoding="utf-8", errors="replace", newline="\n"):
            yield line.rstrip("\n")


def append(logs_dir: Path, slug: str, data: bytes, rotate_bytes: int, disk_bytes: int,
           settle_s: float) -> None:
    """Append whole lines to `{slug}.log` in one write (lines from several processes never
    interleave), then rotate it if it is past `rotate_bytes` (`rotated`). For a log written
    now and then (the schedule history): it is opened per call, so it never needs reopening."""
    fd = os.open(logs_dir / current_name(slug), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        rotated(logs_dir, slug, fd, rotate_bytes, disk_bytes, settle_s)
    finally:
        os.close(fd)


def rotated(logs_dir: Path, slug: str, fd: int, rotate_bytes: int, disk_bytes: int,
            settle_s: float) -> bool:
    """After a write to `fd`, the open `{slug}.log`: if the file is past `rotate_bytes`, rotate
    it and, if this process did, compress it and keep the log within `disk_bytes` on a thread
    (`compress_rotated`; one per rotation, its lock takes them in turn). True if this call
    rotated it: the caller's descriptor now names the rotated file."""
    if os.fstat(fd).st_size < rotate_bytes or not rotate(logs_dir, slug, fd, rotate_bytes):
        return False

    def work() -> None:
        try:
            compress_rotated(logs_dir, slug, disk_bytes, settle_s)
        except OSError:
            log.exception("compressing the rotated log %s in %s failed", slug, logs_dir)

    threading.Thread(target=work, name=f"wexec-log-{slug}", daemon=True).start()
    return True


def rotate(logs_dir: Path, slug: str, fd: int, rotate_bytes: int) -> bool:
    """Rename the tenant's current file aside if it is past `rotate_bytes` and still the file
    `fd` has open; True if this call rotated it. Several processes may call it at once: one
    renames, under the lock, and the others find the file already replaced."""
    path = logs_dir / current_name(slug)
    with _locked(logs_dir, slug, "rotate", wait=False) as held:
        if not held:  # another process rotates it now: the next batch looks again
            return False
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        if st.st_ino != os.fstat(fd).st_ino or st.st_size < rotate_bytes:
            return False
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        os.rename(path, logs_dir / f"{slug}.{stamp}.log")
        return True


def compress_rotated(logs_dir: Path, slug: str, disk_bytes: int, settle_s: float = 0.0) -> None:
    """Compress the tenant's rotated plain files, then remove its oldest rotated files while all
    its logs together take more than `disk_bytes` (run off the event loop, never in the way of
    a rotation: each has its own lock).

    A file renamed less than `settle_s` ago may still get the batch a process was writing when
    another renamed it: it is compressed once it has been left alone that long."""
    with _locked(logs_dir, slug, "compress"):
        while True:
            unsettled = False
            for found in tenant_files(logs_dir, slug, "rotated"):
                if found.compressed:
                    continue
                if time.time() - found.modified < settle_s:
                    unsettled = True
                else:
                    _compress(found.path)
            total = 0
            for found in tenant_files(logs_dir, slug):  # newest first: what is kept
                total += found.size
                if found.rotated and total > disk_bytes:
                    with contextlib.suppress(FileNotFoundError):
                        found.path.unlink()
            if not unsettled:
                return
            time.sleep(settle_s)


def _compress(path: Path) -> None:
    target = path.with_name(path.name + ".zst")
    partial = path.with_name("." + target.name + ".partial")  # not a tenant's name: never listed
    with open(path, "rb") as src, open(partial, "wb") as dst:
        zstandard.ZstdCompressor(level=ZSTD_LEVEL).copy_stream(src, dst)
    os.utime(partial, (time.time(), os.stat(path).st_mtime))
    os.replace(partial, target)
    path.unlink()


@contextlib.contextmanager
def _locked(logs_dir: Path, slug: str, purpose: str, wait: bool = True) -> Iterator[bool]:
    """One of the tenant's locks (`rotate`, `compress`), across processes: an advisory lock on a
    hidden file. With `wait=False` (the event loop) it yields False at once when someone else
    holds it."""
    fd = os.open(logs_dir / f".{slug}.{purpose}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
