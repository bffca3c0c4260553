"""Two caches in front of the compiler: artefacts on disk by content, and files in memory by stat.

The disk cache is keyed by a hash of everything that shapes the bytecode, so a restart, another
checkout or another tenant with the same script reuse it, and a new engine build invalidates it.
The memory cache is keyed by the file's stat, so an unchanged script costs one ``stat`` call.
Magic comments are not stored on disk: they may hold secrets, and re-reading them is cheap.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .shape import Origin, Shape


def cache_key(engine_hash: str, compiler_version: str, source: bytes, options: dict[str, Any]) -> str:
    """sha256 over the engine, the compiler, the options and the source bytes."""
    digest = hashlib.sha256()
    for part in (engine_hash, compiler_version, json.dumps(options, sort_keys=True)):
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    digest.update(source)
    return digest.hexdigest()


@dataclass(frozen=True)
class Compiled:
    """The expensive part of an artefact: what esbuild and the guest produced."""

    bytecode: bytes
    shape: Shape
    mappings: str
    origin: Origin


class ArtefactStore:
    """Compiled products under ``cache_dir/artefacts/``, one file per key, written atomically."""

    def __init__(self, cache_dir: Path) -> None:
        self.root = Path(cache_dir) / "artefacts"

    def _file(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.wxa"

    def load(self, key: str) -> Compiled | None:
        """The stored product for ``key``, or None if absent or unreadable."""
        try:
            blob = self._file(key).read_bytes()
            header, _, bytecode = blob.partition(b"\n")
            meta = json.loads(header)
            origin = Origin(meta["wrapped"], tuple(tuple(seg) for seg in meta["prefix"]))
            return Compiled(bytecode, Shape(meta["shape"]), meta["mappings"], origin)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, key: str, compiled: Compiled) -> None:
        """Write ``compiled`` so readers see either nothing or the whole file."""
        header = json.dumps({
            "shape": compiled.shape.value, "mappings": compiled.mappings,
            "wrapped": compiled.origin.wrapped, "prefix": compiled.origin.prefix,
        }).encode("utf-8")
        target = self._file(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, staged = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(header + b"\n" + compiled.bytecode)
            os.replace(staged, target)
        except BaseException:
            Path(staged).unlink(missing_ok=True)
            raise

    def clear(self) -> None:
        """Remove every stored artefact (the cache-clear endpoint)."""
        if not self.root.is_dir():
            return
        for file in self.root.glob("*/*.wxa"):
            file.unlink(missing_ok=True)


FileKey = tuple[str, str]
"""(tenant root, script path relative to it)."""


class StatLRU:
    """Recently compiled files by path, valid while their stamp is unchanged: the file's
    (mtime_ns, size), and what else went into it (its tenant's installed packages)."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[FileKey, tuple[tuple[int, ...], Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: FileKey, stamp: tuple[int, ...]) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != stamp:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: FileKey, stamp: tuple[int, ...], value: Any) -> None:
        with self._lock:
            self._entries[key] = (stamp, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def invalidate(self, root: str | None = None, rel: str | None = None) -> None:
        """Forget one file, every file of one root, or everything."""
        with self._lock:
            if root is None and rel is None:
                self._entries.clear()
                return
            for key in [k for k in self._entries
                        if (root is None or k[0] == root) and (rel is None or k[1] == rel)]:
                del self._entries[key]
