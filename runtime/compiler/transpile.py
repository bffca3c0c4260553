"""TypeScript/JavaScript → CommonJS JavaScript with esbuild, run as a subprocess.

A subprocess per file costs a few milliseconds and keeps esbuild's version pinned by one binary
(see ``build/esbuild.py``); compiles are cached, so this runs once per source change.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import CompileError
from .sourcemap import split_inline

TARGET = "es2023"
"""Syntax QuickJS-NG runs natively, so esbuild lowers nothing it does not have to."""

LOADERS = {".ts": "ts", ".mts": "ts", ".cts": "ts", ".js": "js", ".mjs": "js", ".cjs": "js"}

_ERROR = re.compile(r"^\S*\s*\[ERROR\] (?P<message>.*)$")
_WHERE = re.compile(r"^\s+(?P<file>.+):(?P<line>\d+):(?P<col>\d+):$")


@dataclass(frozen=True)
class Transpiled:
    """esbuild's CommonJS output and its source map (JSON text)."""

    js: str
    sourcemap: str


def loader_for(path: str) -> str:
    """esbuild's loader for a script path, by extension."""
    loader = LOADERS.get(Path(path).suffix.lower())
    if loader is None:
        raise CompileError(
            f"cannot compile {Path(path).suffix or 'extensionless'} files; "
            f"use one of {', '.join(sorted(LOADERS))}", path)
    return loader


def esbuild_args(loader: str, sourcefile: str) -> list[str]:
    """The flags that define the output; part of the cache key via the compiler options."""
    return [
        f"--loader={loader}", "--format=cjs", f"--target={TARGET}", "--sourcemap=inline",
        "--sources-content=false", "--charset=utf8", "--log-level=error", "--color=false",
        "--log-limit=1", f"--sourcefile={sourcefile}",
    ]


def transpile(esbuild: Path, text: str, loader: str, sourcefile: str) -> Transpiled:
    """Run esbuild over ``text``; a rejection becomes a CompileError at esbuild's position.

    Positions in the error refer to ``text`` (1-based line, 1-based column); the caller maps
    them to the original file.
    """
    done = subprocess.run(
        [str(esbuild), *esbuild_args(loader, sourcefile)],
        input=text.encode("utf-8"), capture_output=True, check=False,
    )
    if done.returncode != 0:
        raise _error(done.stderr.decode("utf-8", "replace"))
    js, sourcemap = split_inline(done.stdout.decode("utf-8"))
    return Transpiled(js, sourcemap)


def _error(stderr: str) -> CompileError:
    lines = stderr.splitlines()
    message = next((m["message"] for t in lines if (m := _ERROR.match(t))), None)
    where = next((w for t in lines if (w := _WHERE.match(t))), None)
    if where is None:
        return CompileError(message or stderr.strip() or "esbuild failed")
    return CompileError(message or "syntax error", None, int(where["line"]), int(where["col"]) + 1)
