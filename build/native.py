"""Build the host's native helpers (``runtime/sandbox/*.c``) as one shared library for this machine.

It is compiled with the guest's pinned toolchain (``build/guest.py``'s ``zig cc``, handed in by
the caller) and cached by a hash of the sources, the flags and the toolchain, so it is compiled
once per cache directory; every write goes to a temporary file renamed into place, so readers
see a whole library or none. The host loads this file by path, so it depends on the standard
library only.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

CFLAGS = ("-O2", "-shared", "-fPIC", "-std=gnu11", "-Wall", "-Werror", "-DNDEBUG")
GUEST_DIR = Path(__file__).resolve().parent.parent / "guest"
HEADERS = (GUEST_DIR / "abi.h",)  # shared with the guest; found on the include path

ZigCC = Callable[[Path, list[str], Path], None]


def build_library(
    cache_dir: Path, name: str, sources: list[Path], zig_cc: ZigCC, toolchain: str
) -> Path:
    """``lib{name}.so`` built from ``sources``, compiled now if this cache has none yet."""
    digest = hashlib.sha256("\0".join((toolchain, *CFLAGS)).encode())
    for source in (*sources, *HEADERS):
        digest.update(b"\0" + Path(source).name.encode() + b"\0" + Path(source).read_bytes())
    out = Path(cache_dir) / "native" / digest.hexdigest()[:32] / f"lib{name}.so"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".build-") as tmp:
        staged = Path(tmp) / out.name
        zig_cc(Path(cache_dir), [*CFLAGS, f"-I{GUEST_DIR}", *map(str, sources), "-o", str(staged)], Path(tmp))
        os.replace(staged, out)
    return out
