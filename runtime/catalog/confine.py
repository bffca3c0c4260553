"""Keeping a tenant inside its folder: every file served must resolve inside the tenant's root.

Links are allowed as long as they stay inside: `alias.ts -> hello.ts` and `v2 -> v1` work, a
link to another tenant's script or folder, or to anything outside, does not. The check is made
twice: on the resolved path when a folder is scanned, and on the opened file descriptor when a
script is read, so a file swapped for a link in between cannot lead the read elsewhere.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

MAX_SCRIPT_BYTES = 16 * 1024 * 1024
"""Largest script source read: a tenant's file must not decide how much memory a compile takes."""


class OutsideRoot(PermissionError):
    """A script whose file, once opened, is not a regular file inside its root."""


class TooLarge(OSError):
    """A file larger than a read was allowed to take."""


def inside(real: str, real_root: str) -> bool:
    """Whether the resolved path `real` is `real_root` or lies under it (both resolved)."""
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def resolved(root: Path) -> str | None:
    """`root` as a string if it is already its own resolved path; None if a link is on the way.

    Roots are resolved once, when tenants are found, and must stay so: a tenant folder swapped
    for a link later would otherwise move the tenant, checks and all, somewhere else.
    """
    path = os.path.abspath(root)
    return path if os.path.realpath(path) == path else None


def read_inside(root: Path, rel: str) -> tuple[bytes, os.stat_result]:
    """The bytes of `root/rel` and the status of what was read, if it is a file inside `root`.

    `root` must be a resolved path (`resolved`). The file is opened following links, then the
    descriptor itself is checked (`read_opened`): that is the file read, whatever happened to the
    path since. `O_NONBLOCK` keeps a FIFO from stalling the open.
    """
    real_root = resolved(root)
    if real_root is None:
        raise OutsideRoot(f"{root} is a link or passes through one; use its resolved path")
    fd = os.open(os.path.join(real_root, rel), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        return read_opened(fd, rel, real_root, f"its folder {root}")
    finally:
        os.close(fd)


def read_opened(fd: int, rel: str, real_root: str, folder: str, limit: int = MAX_SCRIPT_BYTES
                ) -> tuple[bytes, os.stat_result]:
    """The bytes of the open file `fd` (named `rel`, under `folder` in messages), checked first.

    Only a regular file whose descriptor's own path (Linux's `/proc/self/fd`) lies inside
    `real_root` is read, and at most `limit` bytes of it (`TooLarge` past it): whichever path
    led to `fd`, this is the file read.
    """
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        raise OutsideRoot(f"{rel} is not a regular file")
    if not inside(os.readlink(f"/proc/self/fd/{fd}"), real_root):
        raise OutsideRoot(f"{rel} resolves outside {folder}; links must stay inside it")
    if status.st_size > limit:
        raise TooLarge(errno.EFBIG, f"{rel} is larger than {limit} bytes")
    data = _read_to_end(fd, limit + 1, status.st_size)
    if len(data) > limit:
        raise TooLarge(errno.EFBIG, f"{rel} is larger than {limit} bytes")
    return data, status


def _read_to_end(fd: int, most: int, size: int) -> bytes:
    """Up to ``most`` bytes of ``fd`` from where it stands to its end, asking first for what
    its status says it holds (plus one, to see the end); raw reads, since a buffered file
    object costs more to make than a small file takes to read."""
    chunks = []
    got = 0
    while got < most:
        ahead = size - got + 1 if got < size else 1 << 16  # past its status: it grew
        chunk = os.read(fd, min(most - got, ahead, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
