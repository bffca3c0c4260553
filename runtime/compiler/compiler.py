"""Source file → artefact: magic comments, shape, esbuild, guest bytecode, behind two caches."""

from __future__ import annotations

import json
import threading
from pathlib import Path, PurePosixPath

from ..buildtools import load_build_module
from ..catalog.confine import read_inside
from .artefact import Artefact, locate
from .bytecode import FACTORY_OPEN, ToBytecode, wrap_factory
from .cache import ArtefactStore, Compiled, StatLRU, cache_key
from .errors import CompileError
from .magic import MagicCommentError, parse_magic_comments
from .packages import Wanted, bundle, packages_stamp, wanted
from .shape import prepare
from .sourcemap import SourceMap
from .transpile import esbuild_args, loader_for, transpile

COMPILER_VERSION = "2"
"""Bump when this package's output changes for the same input: it is part of every cache key."""

_STRIPES = 64


class Compiler:
    """Compiles scripts for one engine build; safe to share between threads.

    Concurrent compiles of the same source wait for one another instead of duplicating work;
    different sources compile in parallel.
    """

    def __init__(self, cache_dir: Path, engine_hash: str, to_bytecode: ToBytecode, *,
                 esbuild: Path | None = None, memory_entries: int = 1024) -> None:
        self.cache_dir = Path(cache_dir)
        self.engine_hash = engine_hash
        self.to_bytecode = to_bytecode
        self.store = ArtefactStore(self.cache_dir)
        self._esbuild = esbuild
        self._esbuild_version: str = load_build_module("esbuild").ESBUILD_VERSION
        self._files = StatLRU(memory_entries)
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]
        self._esbuild_lock = threading.Lock()

    def compile_source(self, source: str, path: str, root: Path | None = None) -> Artefact:
        """Compile ``source`` as the script at ``path`` (relative to its tenant's folder
        ``root``, whose installed packages and SDKs it may load: those are bundled in)."""
        try:
            magic = parse_magic_comments(source)
        except MagicCommentError as exc:
            error = CompileError(str(exc), path, exc.problems[0][0], None)
            error.secrets = exc.secrets
            raise error from exc
        loader = loader_for(path)
        want = wanted(root, source)
        options = {"esbuild": self._esbuild_version, "args": esbuild_args(loader, path),
                   "factory": FACTORY_OPEN}
        if want is not None:
            options["packages"] = want.fingerprint
        key = cache_key(self.engine_hash, COMPILER_VERSION, source.encode("utf-8"), options)
        with self._stripes[int(key[:8], 16) % _STRIPES]:
            compiled = self.store.load(key)
            if compiled is None:
                try:
                    compiled = self._build(source, path, loader, root, want)
                except CompileError as exc:
                    exc.secrets = magic.secrets
                    raise
                self.store.save(key, compiled)
        return Artefact(key, path, compiled.bytecode, magic, compiled.shape, compiled.mappings,
                        compiled.origin, dict(magic.env))

    def check(self, source: str, path: str) -> None:
        """Compile ``source`` as ``path`` would be, magic comments aside and nothing cached:
        the first error, at its original line and column (the management API's validation)."""
        self._build(source, path, loader_for(path))

    def bundle_check(self, root: Path, source: str) -> None:
        """Bundle the packages ``source`` loads from ``root`` as a compile would (CompileError
        naming the package when one cannot be: the management API's dependency check)."""
        want = wanted(root, source)
        if want is not None:
            bundle(self._esbuild_path(), root, want)

    def compile_file(self, root: Path, rel: str) -> Artefact:
        """Compile ``root/rel``; an unchanged file (same mtime and size, and the same packages
        installed in ``root``) costs three stats.

        Failures are remembered too, so a broken script is not recompiled on every request.
        A file that does not resolve inside ``root`` is refused (``OutsideRoot``) unread.
        """
        rel = _relative(rel)
        stat = (Path(root) / rel).stat()
        entry = (str(root), rel)
        stamp = (stat.st_mtime_ns, stat.st_size, *packages_stamp(Path(root)))
        hit: Artefact | CompileError | None = self._files.get(entry, stamp)
        if isinstance(hit, CompileError):
            raise hit.located(rel)
        if hit is not None:
            return hit
        data, stat = read_inside(Path(root), rel)
        try:
            source = data.decode("utf-8")
            artefact = self.compile_source(source, rel, Path(root))
        except UnicodeDecodeError as exc:
            error = CompileError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", rel)
            self._files.put(entry, stamp, error)
            raise error from None
        except CompileError as exc:
            self._files.put(entry, stamp, exc)
            raise
        self._files.put(entry, stamp, artefact)
        return artefact

    def invalidate(self, root: Path | None = None, rel: str | None = None) -> None:
        """Forget remembered files (one, one root's, or all) so the next call re-stats them."""
        self._files.invalidate(None if root is None else str(root),
                               None if rel is None else _relative(rel))

    def clear(self) -> None:
        """Forget everything, on disk too: the next compile of every script runs esbuild."""
        self._files.invalidate()
        self.store.clear()

    def _esbuild_path(self) -> Path:
        with self._esbuild_lock:
            if self._esbuild is None:
                self._esbuild = load_build_module("esbuild").ensure_esbuild(self.cache_dir)
            return self._esbuild

    def _build(self, source: str, path: str, loader: str, root: Path | None = None,
               want: Wanted | None = None) -> Compiled:
        try:
            prepared = prepare(source)
        except CompileError as exc:
            raise exc.located(path) from None
        try:
            out = transpile(self._esbuild_path(), prepared.text, loader, path)
        except CompileError as exc:
            line, col = exc.line, exc.col
            if line is not None and col is not None:
                line, col0 = prepared.origin.original(line, col - 1)
                col = col0 + 1
            raise CompileError(exc.message, path, line, col) from None
        mappings = json.loads(out.sourcemap)["mappings"]
        packages = None
        if want is not None and root is not None:
            try:
                packages = bundle(self._esbuild_path(), root, want)
            except CompileError as exc:
                raise exc.located(path) from None
        try:
            bytecode = self.to_bytecode(wrap_factory(out.js, packages), path)
        except CompileError as exc:
            where = None
            if exc.line is not None:
                where = locate(SourceMap(mappings), prepared.origin, exc.line, exc.col or 1)
            line, col = where if where is not None else (None, None)
            raise CompileError(exc.message, path, line, col) from None
        return Compiled(bytecode, prepared.shape, mappings, prepared.origin)


def _relative(rel: str) -> str:
    """``rel`` as a clean POSIX path inside its root; anything escaping the root is refused."""
    pure = PurePosixPath(rel.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise ValueError(f"script path must be relative to its root, got {rel!r}")
    return pure.as_posix()
