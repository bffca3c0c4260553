"""Access to the build recipes in ``build/``, which are plain files rather than a package.

``build/`` holds the pinned, reproducible steps (guest compile, snapshot, esbuild fetch) so they
can run standalone (``python build/guest.py``); the runtime loads them by path on first need.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from runtime.config import REPO_ROOT

BUILD_DIR = REPO_ROOT / "build"


def load_build_module(name: str) -> ModuleType:
    """Import ``build/<name>.py`` once, under the module name ``wexec_build.<name>``."""
    qualified = f"wexec_build.{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    path = BUILD_DIR / f"{name}.py"
    spec = importlib.util.spec_from_file_location(qualified, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"build recipe not found: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module
