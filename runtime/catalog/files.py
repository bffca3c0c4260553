"""One tenant's files, as the management API and the `fs` capability see them: confined, link-safe, atomic.

A path is relative to the tenant's folder and is refused by its form before any system call if
it could leave it: absolute, `..`, NUL. The rest is walked one folder at a time from the tenant's
root through open descriptors, and each folder reached is checked where it really is (the
descriptor's own path, `confine.inside`), so a folder link that leads out, or one swapped in
meanwhile, is never entered. A link is followed to read, and only within the tenant; writing,
deleting and moving act on the link itself, as `rm` and `mv` do, so a link can never carry a
write elsewhere. Only regular files are read or written: a FIFO, socket or device is refused.

A write goes to a hidden file beside its target, is flushed to disk, then renamed over it: a
reader sees the old file or the new one, never part of either, and the catalog never compiles a
half-written script.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from runtime.catalog.confine import MAX_SCRIPT_BYTES, OutsideRoot, inside, read_opened, resolved

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_WRITING = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")
"""A write in progress (`.name.<random>.tmp`): never listed."""
_RENAME_NOREPLACE = 1
_libc = ctypes.CDLL(None, use_errno=True)
_libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                            ctypes.c_uint]


class PathRefused(OutsideRoot):
    """A path the file layer will not touch; `rule` says which rule it breaks."""

    def __init__(self, path: str, rule: str) -> None:
        self.path, self.rule = path, rule
        super().__init__(f"{path}: {rule}")


@dataclass(frozen=True, slots=True)
class Entry:
    path: str
    """Relative to the tenant's folder, `/`-separated."""
    kind: Literal["file", "folder"]
    size: int
    mtime_ns: int


def parts(path: str) -> list[str]:
    """The names along `path`; PathRefused when its form alone could lead out of the tenant."""
    if "\0" in path:
        raise PathRefused(path.replace("\0", "\\0"), "contains a NUL byte, which no file name holds")
    if path.startswith("/"):
        raise PathRefused(path, "is absolute; give a path relative to the tenant's folder")
    names = [name for name in path.split("/") if name not in ("", ".")]
    if ".." in names:
        raise PathRefused(path, "climbs out with '..'; give a path inside the tenant's folder")
    return names


class TenantFiles:
    """Every file operation on one tenant's folder, none of which reaches outside it."""

    def __init__(self, root: Path, max_entries: int = 10_000) -> None:
        real_root = resolved(root)
        if real_root is None:
            raise OutsideRoot(f"{root} is a link or passes through one; use its resolved path")
        self.root = real_root
        self.max_entries = max_entries
        """The most entries one `entries` returns: a tenant's folder must not decide an answer's size."""

    def read(self, path: str, limit: int = MAX_SCRIPT_BYTES) -> bytes:
        """The bytes of a regular file, following a link only where it stays inside the tenant;
        `confine.TooLarge` past `limit` bytes."""
        *folder, name = self._file(path)
        with self._folder(folder, path) as fd:
            try:
                file = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
            except FileNotFoundError:
                raise FileNotFoundError(f"{path}: no such file in the tenant's folder") from None
            except OSError as exc:  # a socket cannot be opened at all (ENXIO)
                raise PathRefused(path, f"cannot be opened as a file ({exc.strerror})") from None
            try:
                return read_opened(file, path, self.root, "the tenant's folder", limit)[0]
            finally:
                os.close(file)

    def write(self, path: str, data: bytes, *, create_dirs: bool = True) -> None:
        """Replace or create `path` atomically: written aside, flushed, renamed over the old one."""
        *folder, name = self._file(path)
        with self._folder(folder, path, create=create_dirs) as fd:
            if _kind(fd, name, path) == "folder":
                raise IsADirectoryError(f"{path}: is a folder; write to a file inside it")
            aside = f".{name}.{secrets.token_hex(6)}.tmp"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
            file = os.open(aside, flags, 0o644, dir_fd=fd)
            try:
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(file, view):]
                    os.fsync(file)
                finally:
                    os.close(file)
                _rename(fd, aside, fd, name, path, path, replace=True)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(aside, dir_fd=fd)
                raise
            os.fsync(fd)  # the rename itself survives a crash

    def stat(self, path: str) -> Entry | None:
        """What `path` is (a link followed while it stays inside), or None if nothing is there."""
        names = parts(path)
        if not names:
            status = os.stat(self.root)
            return Entry("", "folder", status.st_size, status.st_mtime_ns)
        *folder, name = names
        try:
            with self._folder(folder, path) as fd:
                kind = _kind(fd, name, path)
                if kind == "missing":
                    return None
                if kind == "link":
                    real = os.path.realpath(f"/proc/self/fd/{fd}/{name}")
                    if not inside(real, self.root):
                        raise PathRefused(path, "is a link that leads outside the tenant's folder")
                status = os.stat(name, dir_fd=fd)
        except (FileNotFoundError, NotADirectoryError):
            return None
        kind_of: Literal["file", "folder"] = "folder" if stat.S_ISDIR(status.st_mode) else "file"
        return Entry("/".join(names), kind_of, status.st_size, status.st_mtime_ns)

    def mkdir(self, path: str) -> None:
        """Make the folder `path` and the folders on the way; nothing if it exists."""
        with self._folder(self._file(path), path, create=True):
            pass

    def delete(self, path: str) -> None:
        """Remove a file or link (never what a link points at), or an empty folder."""
        *folder, name = self._file(path)
        with self._folder(folder, path) as fd:
            kind = _kind(fd, name, path)
            if kind == "missing":
                raise FileNotFoundError(f"{path}: no such file in the tenant's folder")
            if kind == "folder":
                try:
                    os.rmdir(name, dir_fd=fd)
                except OSError as exc:
                    if exc.errno != errno.ENOTEMPTY:
                        raise
                    raise OSError(errno.ENOTEMPTY, f"{path}: is a folder that is not empty; "
                                  "delete what it holds first") from None
            else:
                os.unlink(name, dir_fd=fd)
            os.fsync(fd)

    def move(self, source: str, target: str, *, overwrite: bool = False,
             create_dirs: bool = True) -> None:
        """Rename `source` to `target` in one step; an existing `target` stays unless `overwrite`."""
        *source_folder, source_name = self._file(source)
        *target_folder, target_name = self._file(target)
        source_names = [*source_folder, source_name]
        if [*target_folder, target_name][:len(source_names)] == source_names:
            raise PathRefused(target, f"is {source} or inside it; nothing can move into itself")
        with (self._folder(source_folder, source) as source_fd,
              self._folder(target_folder, target, create=create_dirs) as target_fd):
            if _kind(source_fd, source_name, source) == "missing":
                raise FileNotFoundError(f"{source}: no such file in the tenant's folder")
            _rename(source_fd, source_name, target_fd, target_name, source, target,
                    replace=overwrite)
            os.fsync(target_fd)
            os.fsync(source_fd)

    def entries(self, folder: str = "", *, recursive: bool = False) -> list[Entry]:
        """Files and folders under `folder`, sorted by path; links only where they stay inside.

        A recursive listing does not descend through folder links (they are listed), so links
        can neither loop nor list a folder twice.
        """
        names = parts(folder)
        if not names and not os.path.isdir(self.root):
            return []  # a tenant that has no file yet
        found: list[Entry] = []
        with self._folder(names, folder) as fd:
            self._list(fd, "/".join(names), recursive, found, folder)
        return found

    def _list(self, fd: int, prefix: str, recursive: bool, found: list[Entry], asked: str) -> None:
        with os.scandir(fd) as scan:
            entries = sorted(scan, key=lambda entry: entry.name)
        for entry in entries:
            if _WRITING.match(entry.name):
                continue
            rel = f"{prefix}/{entry.name}" if prefix else entry.name
            try:
                status = os.stat(entry.name, dir_fd=fd, follow_symlinks=False)
                link = stat.S_ISLNK(status.st_mode)
                if link:
                    real = os.path.realpath(f"/proc/self/fd/{fd}/{entry.name}")
                    if not inside(real, self.root):
                        continue  # a link out: not the tenant's to show
                    status = os.stat(entry.name, dir_fd=fd)
            except OSError:
                continue  # gone since the scan, or a loop
            if stat.S_ISREG(status.st_mode):
                kind: Literal["file", "folder"] = "file"
            elif stat.S_ISDIR(status.st_mode):
                kind = "folder"
            else:
                continue  # FIFOs, sockets, devices
            if len(found) >= self.max_entries:
                raise OSError(errno.EFBIG, f"{asked or '.'}: holds more than {self.max_entries} "
                              "entries; list a folder further down")
            found.append(Entry(rel, kind, status.st_size, status.st_mtime_ns))
            if recursive and kind == "folder" and not link:
                sub = os.open(entry.name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
                try:
                    self._list(sub, rel, recursive, found, asked)
                finally:
                    os.close(sub)

    @staticmethod
    def _file(path: str) -> list[str]:
        names = parts(path)
        if not names:
            raise PathRefused(path or "''", "names no file; give a path inside the tenant's folder")
        return names

    @contextlib.contextmanager
    def _folder(self, names: list[str], path: str, *, create: bool = False) -> Iterator[int]:
        """A descriptor on the folder `names` leads to, each step checked to be inside the tenant."""
        if create:
            os.makedirs(self.root, exist_ok=True)
        try:
            fd = os.open(self.root, _DIR_FLAGS | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: no such file or folder in the tenant's folder"
                                    ) from None
        try:
            self._check(fd, path)
            for name in names:
                try:
                    step = self._step(fd, name, create)
                except FileNotFoundError:
                    hint = "" if create else " (creating folders was not asked for)"
                    raise FileNotFoundError(f"{path}: its folder {name!r} does not exist{hint}"
                                            ) from None
                except NotADirectoryError:
                    raise NotADirectoryError(f"{path}: {name!r} on the way is a file, not a folder"
                                             ) from None
                os.close(fd)
                fd = step
                self._check(fd, path)
            yield fd
        finally:
            os.close(fd)

    @staticmethod
    def _step(fd: int, name: str, create: bool) -> int:
        if create:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=fd)
        return os.open(name, _DIR_FLAGS, dir_fd=fd)

    def _check(self, fd: int, path: str) -> None:
        if not inside(os.readlink(f"/proc/self/fd/{fd}"), self.root):
            raise PathRefused(path, "passes through a link that leads outside the tenant's folder")



def _kind(fd: int, name: str, path: str) -> Literal["file", "folder", "link", "missing"]:
    """What `name` in the folder `fd` is; PathRefused for anything but a file, link or folder."""
    try:
        mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return "missing"
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISLNK(mode):
        return "link"
    if stat.S_ISDIR(mode):
        return "folder"
    raise PathRefused(path, "is a FIFO, socket or device; only regular files, links and folders "
                      "are handled")


def _rename(source_fd: int, source_name: str, target_fd: int, target_name: str, source: str,
            target: str, *, replace: bool) -> None:
    """`renameat2`: one atomic step, which also refuses an existing target when not `replace`."""
    flags = 0 if replace else _RENAME_NOREPLACE
    if _libc.renameat2(source_fd, os.fsencode(source_name), target_fd, os.fsencode(target_name),
                       flags) == 0:
        return
    err = ctypes.get_errno()
    if err == errno.EEXIST or (err == errno.ENOTEMPTY and not replace):
        raise FileExistsError(f"{target}: already exists; ask to overwrite it to replace it")
    if err == errno.ENOTEMPTY:
        raise FileExistsError(f"{target}: is a folder that is not empty; it cannot be replaced")
    if err == errno.EISDIR:
        raise IsADirectoryError(f"{target}: is a folder; a file cannot replace it")
    if err == errno.ENOTDIR:
        raise NotADirectoryError(f"{target}: is a file; a folder cannot replace it")
    raise OSError(err, f"{source} -> {target}: {os.strerror(err)}")
