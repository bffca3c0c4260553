"""The host's native helpers (``memory.c``, ``instance.c``, ``answers.c``): one library, built on
first use.

They sit on wasmtime's per-instance hot path, where a Python callback or a dozen ctypes calls
cost more than the work they ask for. ``build/native.py`` compiles them with the guest's pinned
toolchain, once per cache directory; each Python module binds the functions of its own source.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runtime.buildtools import load_build_module

SOURCES = [Path(__file__).with_name(name) for name in ("memory.c", "instance.c", "answers.c")]


@functools.cache
def library(cache_dir: Path) -> ctypes.CDLL:
    """The helpers built for this machine (once per cache directory) and loaded."""
    guest, native = load_build_module("guest"), load_build_module("native")
    path = native.build_library(cache_dir, "wexec", SOURCES, guest.zig_cc, guest.ZIGLANG_VERSION)
    return ctypes.CDLL(str(path))


Signature = tuple[str, Any, Sequence[Any]]
"""A function's name, result type and argument types."""


def bind(lib: ctypes.CDLL, signatures: Sequence[Signature]) -> None:
    """Give ``lib``'s functions their (name, result type, argument types)."""
    for name, restype, argtypes in signatures:
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, list(argtypes)
