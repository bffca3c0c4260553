"""Shared fixtures: one real sandbox (real guest, real wasmtime) for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import settings_for_tests


@pytest.fixture(scope="session")
def sandbox() -> Iterator[object]:
    from runtime.sandbox import Sandbox

    sb = Sandbox(settings_for_tests(memory_limit=32 * 1024 * 1024))
    yield sb
    sb.close()
