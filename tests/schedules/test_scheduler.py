"""The scheduler on a fake clock: `start_due(now)` is what its loop calls each time it wakes, so
a test can be at any tick. Real sandbox, real catalog, real files; two real processes where the
claim is across processes."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from runtime.app import App, create_app
from runtime.schedules import FiresLog
from runtime.schedules.ticks import Ticks
from runtime.schedules.times import iso, next_tick
from tests.support import REPO, Lifespan, settings_for_tests, write_scripts

YEARLY = "0 0 1 1 *"


@pytest_asyncio.fixture(loop_scope="function")
async def app(tmp_path: Path) -> AsyncIterator[App]:
    write_scripts(tmp_path / "scripts", {
        "slow.ts": f"// @schedule {YEARLY}\nawait new Promise(r => setTimeout(r, 1500));\n"
                   "return metadata.trigger;\n"})
    app = create_app(settings_for_tests(scripts=tmp_path / "scripts", data=tmp_path / "data"))
    lifespan = Lifespan(app)
    await lifespan.start()
    try:
        yield app
    finally:
        await lifespan.stop()


@pytest.mark.asyncio(loop_scope="function")
async def test_a_run_still_going_at_the_next_tick_is_not_overlapped(app: App,
                                                                    tmp_path: Path) -> None:
    schedules = app.schedules
    assert schedules is not None
    [(_, first)] = schedules.registrations("default/1")
    second = next_tick(YEARLY, first)
    [running] = schedules.start_due(first + timedelta(seconds=5))
    await asyncio.sleep(0.5)
    assert schedules.running("default/1", "slow.ts")
    [overlapping] = schedules.start_due(second + timedelta(seconds=5))
    skipped = await overlapping
    assert skipped is not None and skipped.status == "skipped" and skipped.tick == second
    done = await running
    assert done is not None and done.status == "ok" and done.tick == first
    assert 1400 <= done.duration_ms < 5000
    assert not schedules.running("default/1", "slow.ts")
    assert schedules.start_due(second + timedelta(seconds=6)) == []  # not due again
    records = FiresLog(tmp_path / "data" / "schedules" / "default-1").newest(
        10, include_rotated=True)
    assert [(r["status"], r["tick"]) for r in records] == [("ok", iso(first)),
                                                           ("skipped", iso(second))]
    assert schedules.figures().fired == 1 and schedules.figures().skipped == 1
    assert schedules.figures().registered == 1 and schedules.figures().failed == 0


def _claim_all(path: str, ticks: list[str], out: multiprocessing.Queue[list[str]]) -> None:
    store = Ticks(Path(path))
    out.put([t for t in ticks
             if store.claim("default/1", "a.ts", datetime.fromisoformat(t), "fire")])


def test_two_processes_never_both_claim_a_tick(tmp_path: Path) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    ticks = [(start + timedelta(minutes=n)).isoformat() for n in range(300)]
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[list[str]] = context.Queue()
    procs = [context.Process(target=_claim_all, args=(str(tmp_path / "t.sqlite"), ticks, out))
             for _ in range(2)]
    for proc in procs:
        proc.start()
    won = [out.get(timeout=60), out.get(timeout=60)]
    for proc in procs:
        proc.join(timeout=60)
    assert sorted(won[0] + won[1]) == sorted(ticks)  # each tick once, by one of them
    assert not set(won[0]) & set(won[1])


def test_two_server_processes_fire_a_tick_once_and_record_missed_ticks_once(
        tmp_path: Path) -> None:
    scripts, data = tmp_path / "scripts", tmp_path / "data"
    write_scripts(scripts, {"every.ts": "// @schedule * * * * *\n"
                            "if (metadata.trigger !== 'schedule') throw new Error('no');\n"
                            "return 1;\n"})
    # Both processes must start within one real minute: each records the ticks missed up to
    # its own start, and nothing here fires the real minute that would otherwise close the gap
    # between them (a server's own processes fire it; here the clock that fires is fake).
    second = datetime.now(UTC).second
    if second >= 30:
        time.sleep(61 - second)
    # the last tick anyone fired was ten minutes ago: the server was down since
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    last = now - timedelta(minutes=10)
    Ticks(data / "schedules" / "ticks.sqlite").claim("default/1", "every.ts", last, "fire")
    when = iso(now + timedelta(days=1, seconds=10))  # a fake clock, the same in both
    procs = [subprocess.Popen(
        [sys.executable, "-m", "tests.schedules.one_process", str(scripts), str(data), when],
        cwd=REPO, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [json.loads(p.communicate(timeout=180)[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(len(o["fired"]) for o in outputs) == 1
    assert sum(o["missed"] for o in outputs) == 1
    records = FiresLog(data / "schedules" / "default-1").newest(1000, include_rotated=True)
    missed = [r for r in records if r["status"] == "missed"]
    assert len(missed) == 1 and missed[0]["missedFrom"] == iso(last + timedelta(minutes=1))
    assert 8 <= missed[0]["missedTicks"] <= 11
    fired = [r for r in records if r["status"] != "missed"]
    assert [r["tick"] for r in fired if r["tick"] == iso(now + timedelta(days=1))] \
        == [iso(now + timedelta(days=1))]
    assert all(r["status"] == "ok" for r in fired)
    ticks = [r["tick"] for r in fired]
    assert len(ticks) == len(set(ticks))  # a real minute passing meanwhile also fired once
