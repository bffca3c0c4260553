"""Shared fixtures: one real sandbox (real guest, real wasmtime) for the whole session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.config import Settings


def settings_for_tests(**overrides: object) -> Settings:
    """Settings for tests: the machine's shared build cache, unless WEXEC_CACHE says otherwise."""
    cache = os.environ.get("WEXEC_CACHE")
    if cache:
        overrides.setdefault("cache", Path(cache))
    return Settings(**overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def sandbox() -> Iterator[object]:
    from runtime.sandbox import Sandbox

    sb = Sandbox(settings_for_tests(memory_limit=32 * 1024 * 1024))
    yield sb
    sb.close()
