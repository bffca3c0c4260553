"""Fetch the pinned standalone esbuild binary from the npm registry, once per cache directory.

The compiler runs esbuild as a subprocess; a pinned version keeps transpiled output, and so
the content-addressed compile cache, stable across machines. Stdlib only: this file is loaded
by path (``runtime.buildtools.load_build_module``) before anything else is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

ESBUILD_VERSION = "0.28.2"
NPM_PACKAGE = "@esbuild/linux-x64"
_MEMBER = "package/bin/esbuild"


def esbuild_path(cache_dir: Path) -> Path:
    """Where the pinned binary lives in ``cache_dir`` (it may not exist yet)."""
    return Path(cache_dir) / f"esbuild-{ESBUILD_VERSION}" / "esbuild"


def ensure_esbuild(cache_dir: Path) -> Path:
    """Return the pinned esbuild binary, downloading it with ``npm pack`` on first use.

    The binary is moved into place atomically, so concurrent callers either see nothing or a
    complete executable; a second call is a single stat.
    """
    target = esbuild_path(cache_dir)
    if target.is_file() and os.access(target, os.X_OK):
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"esbuild {ESBUILD_VERSION} is not cached at {target} and npm is not on PATH")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wexec-esbuild-") as tmp:
        spec = f"{NPM_PACKAGE}@{ESBUILD_VERSION}"
        done = subprocess.run(
            [npm, "pack", spec, "--silent", "--pack-destination", tmp],
            cwd=tmp, capture_output=True, text=True, check=False,
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or len(tarballs) != 1:
            raise RuntimeError(f"npm pack {spec} failed ({done.returncode}): {done.stderr.strip()}")
        with tarfile.open(tarballs[0], "r:gz") as tar:
            member = tar.extractfile(_MEMBER)
            if member is None:
                raise RuntimeError(f"{spec} has no {_MEMBER}")
            fd, staged = tempfile.mkstemp(dir=target.parent, prefix=".esbuild-")
            try:
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(member, out)
                os.chmod(staged, 0o755)
                os.replace(staged, target)
            except BaseException:
                Path(staged).unlink(missing_ok=True)
                raise
    return target
