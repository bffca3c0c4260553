"""``fs``: a script's files, inside its tenant's folder (the folder its scripts are in).

Every operation goes through ``catalog.files.TenantFiles``, the one confined file layer the
management API uses too: a path is refused by its form (absolute, ``..`` past the root, NUL)
before any system call, then walked one folder at a time through descriptors checked to be
inside the tenant, and a file is read only once its opened descriptor is checked, so a link
out (or one swapped in meanwhile) is refused. A write goes to a hidden file, is flushed and
renamed over the old one: a process killed mid-write leaves the old file whole.

Granted to every script, for its own tenant's folder only (a tenant's scripts are the tenant's
own; a script that writes scripts is how endpoints write themselves); ``WEXEC_FS_ENABLED=false``
refuses it to all. Per tenant: a disk quota on what its folder holds, and a cap on one file.

A read is first a bound call (``fs.peek``), answered inside the guest's crossing: a file up to
``INLINE_READ_BYTES`` (one call's answer) costs no resume of the guest and no turn of the event
loop; a larger one is read by the ``fs.read`` op, on a thread. Lookups run on the event loop:
from the page cache they cost less than the hop to a thread. Everything else that may wait on
the disk (writes and their fsyncs, listings) runs on a thread. A ``.ts``/``.js`` written, moved or
deleted through ``fs`` changes the tenant's routes before the operation settles: the very next
request is served by it.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import os
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import BaseSettings

from runtime.catalog.confine import TooLarge
from runtime.catalog.files import Entry, TenantFiles
from runtime.catalog.tenants import root_of
from runtime.host import Caller, HostError, OpContext, Unit

if TYPE_CHECKING:
    from runtime.compiler.magic import MagicComments
    from runtime.config import Settings

INLINE_READ_BYTES = 60 * 1024
"""Files up to this size are read by ``peek``, in the crossing (within the guest's buffer for a
call's answer, 64 KiB); larger ones by the ``read`` op, on a thread."""
WHOLE, LARGER = b"=", b">"
"""``peek``'s answer starts with one of these: the file follows, or it is larger than a peek."""
USAGE_TTL_S = 60.0
"""How long a tenant's measured disk use is trusted (adjusted by each write through fs) before
its folder is measured again: files also change by other ways (the API, an editor)."""
SCRIPT_SUFFIXES = (".ts", ".js")


class FsSettings(BaseSettings):
    fs_enabled: bool = Field(
        True, description="Grant `fs` to scripts (each within its own tenant's folder).",
    )
    tenant_disk_bytes: int = Field(
        1024 ** 3, ge=0, description="Bytes one tenant's folder may hold; a write through `fs` "
        "past it fails with an error naming this setting.",
    )
    fs_max_file_bytes: int = Field(
        16 * 1024 * 1024, ge=0, description="Largest file a script may write or read through `fs`.",
    )


@dataclass(frozen=True, slots=True)
class Grant:
    root: Path
    disk_bytes: int
    file_bytes: int


class FsError(HostError):
    js_name = "Error"


def configure(settings: Settings, tenant: str) -> Grant | None:
    assert isinstance(settings, FsSettings)
    if not settings.fs_enabled:
        return None
    return Grant(root_of(settings, tenant), settings.tenant_disk_bytes, settings.fs_max_file_bytes)


def grant(configured: Grant | None, magic: MagicComments) -> Grant | None:
    return configured


# -- per tenant: its files and what they hold -------------------------------------------------

_files: dict[Path, TenantFiles] = {}
_usage: dict[Path, tuple[int, float]] = {}  # root → (bytes, when measured)
_writing: dict[Path, threading.Lock] = {}  # root → held by each write: quota and append in order


def _files_of(root: Path) -> TenantFiles:
    files = _files.get(root)
    if files is None:
        files = _files.setdefault(root, TenantFiles(root))
    return files


def _measure(root: Path) -> int:
    """Bytes of the regular files under ``root``, links not followed."""
    total, folders = 0, [str(root)]
    while folders:
        try:
            with os.scandir(folders.pop()) as scan:
                for entry in scan:
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
        except FileNotFoundError:
            continue
    return total


def _used(root: Path) -> int:
    used, measured = _usage.get(root, (0, 0.0))
    if time.monotonic() - measured > USAGE_TTL_S:
        used = _measure(root)
        _usage[root] = (used, time.monotonic())
    return used


def _store(grant: Grant, path: str, data: bytes, append: bool) -> None:
    """Write (or append to) ``path`` within the file cap and the tenant's quota (on a thread)."""
    files = _files_of(grant.root)
    verb = "fs.append" if append else "fs.write"
    with _writing.setdefault(grant.root, threading.Lock()):
        old = files.stat(path)
        before = old.size if old is not None and old.kind == "file" else 0
        if append and before:
            data = files.read(path, grant.file_bytes) + data
        if len(data) > grant.file_bytes:
            raise FsError(f"{verb}: {path}: {len(data)} bytes is more than one file may hold "
                          f"({grant.file_bytes}, WEXEC_FS_MAX_FILE_BYTES)")
        used = _used(grant.root)
        after = used - before + len(data)
        if len(data) > before and after > grant.disk_bytes:
            raise FsError(f"{verb}: {path}: the tenant's folder would hold {after} bytes, past its quota "
                          f"of {grant.disk_bytes} (WEXEC_TENANT_DISK_BYTES); delete files first")
        files.write(path, data)
        _usage[grant.root] = (after, _usage.get(grant.root, (0, time.monotonic()))[1])


def _forget(grant: Grant, size: int) -> None:
    used, measured = _usage.get(grant.root, (0, 0.0))
    _usage[grant.root] = (max(0, used - size), measured)


# -- the ops ----------------------------------------------------------------------------------

def _grant(ctx: OpContext) -> Grant:
    found: Grant = ctx.grants["fs"]
    return found


def _path(args: dict[str, Any], key: str = "path") -> str:
    path = args.get(key)
    if not isinstance(path, str):
        raise FsError(f"fs: `{key}` must be a string path relative to the tenant's folder")
    return path


def _data(args: dict[str, Any]) -> bytes:
    text = args.get("text")
    if isinstance(text, str):
        return text.encode()
    if isinstance(args.get("base64"), str):
        return base64.b64decode(args["base64"], validate=True)
    raise FsError("fs: data must be a string, an ArrayBuffer or a typed array")


def _may_route(path: str) -> bool:
    """Whether a change at ``path`` may change routes: a script, or what may be a folder."""
    name = path.rsplit("/", 1)[-1]
    return name.endswith(SCRIPT_SUFFIXES) or "." not in name


async def _refresh(ctx: OpContext, *paths: str) -> None:
    """Make the tenant's routes follow a change that may concern its scripts, before the op
    settles; versions nobody serves any more are let go."""
    catalog, sandbox = ctx.services.catalog, ctx.services.sandbox
    if catalog is None or not any(_may_route(p) for p in paths):
        return
    refresh = partial(catalog.refresh, tenant=ctx.tenant, touched=frozenset(paths))
    for key in await asyncio.to_thread(refresh):
        if sandbox is not None:
            sandbox.evict(key)


def _failed(verb: str, exc: OSError) -> FsError:
    """An OSError as the script sees it: ours carry their whole message as ``strerror``."""
    return FsError(f"fs.{verb}: {exc.strerror or exc}")


def peek(data: bytes, caller: Caller) -> bytes:
    """``fs.peek path`` → ``=`` and the file's bytes, or ``>`` if it is larger than a peek
    answers (then the guest reads it with the op)."""
    grant: Grant = caller.grants["fs"]
    path = data.decode()
    try:
        return WHOLE + _files_of(grant.root).read(path, min(INLINE_READ_BYTES, grant.file_bytes))
    except TooLarge:
        if grant.file_bytes <= INLINE_READ_BYTES:
            raise FsError(f"fs.read: {path} is larger than the {grant.file_bytes} bytes one "
                          "file may hold (WEXEC_FS_MAX_FILE_BYTES)") from None
        return LARGER
    except OSError as exc:
        raise _failed("read", exc) from None


async def read(args: dict[str, Any], ctx: OpContext) -> bytes:
    """``fs.read {path}`` → the file's bytes (the guest decodes text), on a thread."""
    grant, path = _grant(ctx), _path(args)
    files = _files_of(grant.root)
    try:
        return await asyncio.to_thread(files.read, path, grant.file_bytes)
    except TooLarge:
        raise FsError(f"fs.read: {path} is larger than the {grant.file_bytes} bytes one file may "
                      "hold (WEXEC_FS_MAX_FILE_BYTES)") from None
    except OSError as exc:
        raise _failed("read", exc) from None


async def write(args: dict[str, Any], ctx: OpContext) -> None:
    """``fs.write {path, text | base64}``: replace or create the file, folders on the way too."""
    await _write(args, ctx, append=False)


async def append(args: dict[str, Any], ctx: OpContext) -> None:
    """``fs.append {path, text | base64}``: the file with the data after it, written whole."""
    await _write(args, ctx, append=True)


async def _write(args: dict[str, Any], ctx: OpContext, append: bool) -> None:
    grant, path = _grant(ctx), _path(args)
    data = _data(args)
    try:
        await asyncio.to_thread(_store, grant, path, data, append)
    except OSError as exc:
        raise _failed("append" if append else "write", exc) from None
    await _refresh(ctx, path)


async def exists(args: dict[str, Any], ctx: OpContext) -> bool:
    try:
        return _files_of(_grant(ctx).root).stat(_path(args)) is not None
    except OSError as exc:
        raise _failed("exists", exc) from None


def _entry(entry: Entry) -> dict[str, Any]:
    return {"path": entry.path, "name": entry.path.rsplit("/", 1)[-1], "kind": entry.kind,
            "size": entry.size, "mtimeMs": entry.mtime_ns // 1_000_000}


async def stat(args: dict[str, Any], ctx: OpContext) -> dict[str, Any]:
    path = _path(args)
    try:
        found = _files_of(_grant(ctx).root).stat(path)
    except OSError as exc:
        raise _failed("stat", exc) from None
    if found is None:
        raise FsError(f"fs.stat: {path}: no such file or folder in the tenant's folder")
    return _entry(found)


async def list_(args: dict[str, Any], ctx: OpContext) -> list[dict[str, Any]]:
    """``fs.list {path, recursive}`` → the entries under the folder (``''``: the root)."""
    files = _files_of(_grant(ctx).root)
    path = args.get("path") or ""
    try:
        entries = await asyncio.to_thread(files.entries, _path({"path": path}),
                                          recursive=bool(args.get("recursive")))
    except OSError as exc:
        raise _failed("list", exc) from None
    return [_entry(entry) for entry in entries]


async def mkdir(args: dict[str, Any], ctx: OpContext) -> None:
    path = _path(args)
    try:
        await asyncio.to_thread(_files_of(_grant(ctx).root).mkdir, path)
    except OSError as exc:
        raise _failed("mkdir", exc) from None


async def delete(args: dict[str, Any], ctx: OpContext) -> None:
    """``fs.delete {path}``: a file or link, or an empty folder."""
    grant, path = _grant(ctx), _path(args)
    files = _files_of(grant.root)

    def remove() -> None:
        with _writing.setdefault(grant.root, threading.Lock()):
            found = files.stat(path)
            files.delete(path)
            if found is not None and found.kind == "file":
                _forget(grant, found.size)

    try:
        await asyncio.to_thread(remove)
    except OSError as exc:
        raise _failed("delete", exc) from None
    await _refresh(ctx, path)


async def move(args: dict[str, Any], ctx: OpContext) -> None:
    """``fs.move {from, to, overwrite}``: one atomic rename inside the tenant's folder."""
    grant = _grant(ctx)
    source, target = _path(args, "from"), _path(args, "to")
    try:
        await asyncio.to_thread(_files_of(grant.root).move, source, target,
                                overwrite=bool(args.get("overwrite")))
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            raise FsError("fs.move: both paths must be inside the tenant's folder") from None
        raise _failed("move", exc) from None
    await _refresh(ctx, source, target)


UNIT = Unit(
    name="fs",
    granted_by="every script may use its own tenant's folder unless WEXEC_FS_ENABLED=false",
    bound_calls={"peek": peek},
    ops={"read": read, "write": write, "append": append, "exists": exists, "stat": stat,
         "list": list_, "mkdir": mkdir, "delete": delete, "move": move},
    settings=FsSettings,
    configure=configure,
    grant=grant,
)
