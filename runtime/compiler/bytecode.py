"""The boundary with the guest: the factory text it compiles, and the compile call itself.

The compiler never runs wasm. Whoever owns the engine hands in a ``ToBytecode`` (the guest's
``wx_compile``), which keeps this package testable without the sandbox.
"""

from __future__ import annotations

from typing import Protocol

from .packages import FACTORY_HOOK

FACTORY_OPEN = "(function (module, exports, require) {\n"
FACTORY_CLOSE = "\n})"
FACTORY_LINES = FACTORY_OPEN.count("\n")
"""Lines the factory adds above esbuild's output; positions inside the factory are shifted by it."""


class ToBytecode(Protocol):
    """Compile the factory expression ``js`` (named ``filename`` in stack traces) to bytecode.

    Raises ``CompileError`` with ``line``/``col`` (1-based) in ``js`` when QuickJS rejects it;
    the compiler maps those to the original file.
    """

    def __call__(self, js: str, filename: str, /) -> bytes: ...


def wrap_factory(js: str, packages: str | None = None) -> str:
    """The one expression the guest evaluates once per instance to get ``module.exports``.

    ``packages``, the bundled npm packages (``packages.bundle``), goes after the script, so
    the script keeps its lines; its hook shares the opening line.
    """
    if packages is None:
        return FACTORY_OPEN + js + FACTORY_CLOSE
    return FACTORY_OPEN[:-1] + FACTORY_HOOK + "\n" + js + "\n" + packages + FACTORY_CLOSE
