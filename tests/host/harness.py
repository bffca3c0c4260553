"""A sandbox holding only chosen host units, run with chosen grants (Spin's TestEnvironment).

Kept out of a ``conftest.py``: a second one would shadow ``tests/conftest.py``, which other test
modules import by that name.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from itertools import count
from typing import Any

from runtime.config import Settings
from runtime.host import Unit
from runtime.sandbox import Invocation, Result, Sandbox
from tests.support import settings_for_tests

_names = count()


class Harness:
    """Runs scripts in a real sandbox (real guest, real wasmtime) that holds only ``units``."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def run(
        self, source: str, *, grants: Mapping[str, Any] | None = None, mode: str = "serverless",
        tenant: str = "default/1",
    ) -> Result:
        """Run ``source`` as one request; ``grants`` None: what its magic comments earn it."""
        header = "// @mode worker\n" if mode == "worker" else ""
        artefact = self.sandbox.compiler.compile_source(header + source, f"h{next(_names)}.ts")
        return await self.sandbox.invoke(
            artefact, Invocation("GET", "/h"), tenant=tenant, grants=grants
        )


@contextmanager
def holding(*units: Unit, settings: Settings | None = None) -> Iterator[Harness]:
    """A harness whose sandbox holds ``units`` (and the response's own), closed afterwards."""
    sandbox = Sandbox(settings or settings_for_tests(memory_limit=32 * 1024 * 1024), units)
    try:
        yield Harness(sandbox)
    finally:
        sandbox.close()
