"""Every knob of wexec in one pydantic settings object (environment prefix ``WEXEC_``)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout wexec runs from: it holds ``guest/``, ``build/`` and the example ``scripts/``."""

MiB = 1024 * 1024


class Settings(BaseSettings):
    """Settings read from ``WEXEC_*`` environment variables, overridable by CLI flags."""

    model_config = SettingsConfigDict(env_prefix="WEXEC_", extra="ignore")

    scripts: Path = Field(REPO_ROOT / "scripts", description="Scripts of the default tenant.")
    data: Path | None = Field(None, description="State, logs and caches; default .wexec/ beside scripts.")
    cache: Path | None = Field(
        None, description="Build and compile caches; default ~/.cache/wexec (shared by checkouts)."
    )

    # Sandbox limits.
    memory_limit: int = Field(64 * MiB, description="Linear-memory cap per script instance, bytes.")
    timeout_ms: int = Field(3_600_000, description="Default @timeout; 0 means unlimited.")
    max_timeout_ms: int = Field(3_600_000, description="Cap on any script's @timeout; 0 = no cap.")
    epoch_tick_ms: int = Field(10, description="Epoch ticker period: how finely deadlines are checked.")
    guest_threads: int = Field(2, description="Threads that run guest code off the event loop.")
    inline_budget_ms: float = Field(
        2.0,
        description="Guest calls that recently finished under this run on the event loop; "
        "slower scripts go to the guest threads.",
    )

    @cached_property
    def data_dir(self) -> Path:
        return self.data if self.data is not None else self.scripts.parent / ".wexec"

    @cached_property
    def cache_dir(self) -> Path:
        if self.cache is not None:
            return self.cache
        return Path.home() / ".cache" / "wexec"
