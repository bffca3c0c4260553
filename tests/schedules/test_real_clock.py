"""A `* * * * *` schedule fires on the real clock, through `wexec serve --workers 2`: within
61 s of start-up, once per tick (not once per process), as a scheduled run."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.support import running_server, write_scripts

PREFIX = "/api/v1/exec"


@pytest.mark.slow
def test_every_minute_fires_within_61_s_once_across_two_workers(tmp_path: Path) -> None:
    write_scripts(tmp_path / "scripts", {
        "minutely.ts": "// @schedule * * * * *\n"
                       "if (metadata.trigger !== 'schedule') throw new Error('not scheduled');\n"
                       "return { at: Date.now() };\n"})
    with running_server(["--scripts", str(tmp_path / "scripts"), "--data", str(tmp_path / "data"),
                         "--workers", "2"]) as base, httpx.Client(base_url=base) as client:
        started = time.monotonic()
        entries: list[dict[str, object]] = []
        while time.monotonic() - started < 61 and not entries:
            time.sleep(0.5)
            entries = client.get(f"{PREFIX}/schedules/history").json()["entries"]
        assert entries, "no fire within 61 s"
        time.sleep(2)  # the other worker had its chance at the same tick
        entries = client.get(f"{PREFIX}/schedules/history").json()["entries"]
    assert [e["status"] for e in entries] == ["ok"] * len(entries), entries
    ticks = [e["tick"] for e in entries]
    assert len(ticks) == len(set(ticks)), entries  # each tick fired by one process only
    assert {e["trigger"] for e in entries} == {"schedule"}
