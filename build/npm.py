"""Fetch the pinned npm packages the guest prelude bundles, once per cache directory.

The prelude's Web APIs stand on maintained, spec-tested JavaScript (streams from the WHATWG
reference implementation, URLPattern) rather than on hand-written code. Each package is pinned
by name, version and the registry's sha512 integrity; ``npm pack`` (the registry's own client)
downloads the tarball, the digest is checked, and the package is unpacked under
``<cache>/npm/<pins hash>/node_modules/<name>``, where esbuild resolves the prelude's imports.
Stdlib only: build/guest.py loads this file by path.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# (name, version, integrity as the registry's dist.integrity states it, licence)
PACKAGES = (
    (
        "web-streams-polyfill",
        "4.3.0",
        "sha512-/Gnggvj9oSrEvJbDyyPtAnxBt5fGQM2iWOKQNu7ie1OxDgK40iZpyV3TKaRiEzVj1oA1UxKnEy9XPXh6PW3eVw==",
        "MIT",
    ),
    (
        "urlpattern-polyfill",
        "10.1.0",
        "sha512-IGjKp/o0NL3Bso1PymYURCJxMPNAf/ILOpendP9f5B6e1rTJgdgiOvgfoT8VxCAdY+Wisb9uhGaJJf3yZ2V9nw==",
        "MIT",
    ),
    (  # data only: the Encoding Standard's labels and indexes, read by build/encodings.py
        "@sinonjs/text-encoding",
        "0.7.3",
        "sha512-DE427ROAphMQzU4ENbliGYrBSYPXF+TtLg9S8vzeA+OF4ZKzoDdzfL8sxuMUGS/lgRhM6j1URSk9ghf7Xo1tyA==",
        "Unlicense OR Apache-2.0",
    ),
)


def pins() -> str:
    """The pins as one string: a new version or digest unpacks into a folder of its own."""
    return "\0".join("\0".join(p) for p in PACKAGES)


def node_modules(cache_dir: Path) -> Path:
    """The folder holding every pinned package, fetching what is missing.

    Safe to run from several processes at once: each package is unpacked in a temporary folder
    renamed into place, so a reader sees a whole package or none.
    """
    root = Path(cache_dir) / "npm" / hashlib.sha256(pins().encode()).hexdigest()[:16] / "node_modules"
    for name, version, integrity, _ in PACKAGES:
        dest = root / name
        if (dest / "package.json").is_file():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        _fetch(name, version, integrity, dest)
    return root


def _fetch(name: str, version: str, integrity: str, dest: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(f"{name}@{version} is not cached at {dest} and npm is not on PATH")
    spec = f"{name}@{version}"
    print(f"wexec: fetching {spec} from the npm registry for the guest prelude", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".npm-") as tmp:
        done = subprocess.run(
            [npm, "pack", spec, "--silent", "--pack-destination", tmp],
            cwd=tmp, capture_output=True, text=True, check=False,
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or len(tarballs) != 1:
            raise RuntimeError(f"npm pack {spec} failed ({done.returncode}): {done.stderr.strip()}")
        data = tarballs[0].read_bytes()
        digest = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        if digest != integrity:
            raise RuntimeError(f"{spec} has integrity {digest}, expected {integrity} (build/npm.py)")
        unpacked = Path(tmp) / "unpacked"
        with tarfile.open(tarballs[0], "r:gz") as tar:
            tar.extractall(unpacked, filter="data")
        print(f"wexec: {spec} verified ({len(data) // 1024} KiB)", file=sys.stderr, flush=True)
        try:
            os.rename(unpacked / "package", dest)
        except OSError:
            if not (dest / "package.json").is_file():  # another process won the race otherwise
                raise
