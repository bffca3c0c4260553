"""Following a log: lines written after connecting, across a rotation, for a bounded time."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import orjson
import pytest

from runtime.observe import logquery


async def _next_data(stream: object) -> dict:
    while True:
        event = await asyncio.wait_for(stream.__anext__(), 5)  # type: ignore[attr-defined]
        if event.startswith(b"data: "):
            return orjson.loads(event[6:])


def _append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


async def test_follow_goes_on_across_a_rotation_and_stops_in_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logquery, "FOLLOW_POLL_S", 0.01)
    monkeypatch.setattr(logquery, "FOLLOW_MAX_S", 1.0)
    current = tmp_path / "t-1.log"
    current.write_text('{"n":0}\n')
    stream = logquery.follow(tmp_path, "t-1", "t-1.log", [{"n": "history"}], True)
    assert await _next_data(stream) == {"n": "history"}
    waiting = asyncio.ensure_future(_next_data(stream))
    await asyncio.sleep(0.05)
    _append(current, '{"n":1}\n{"n":')  # a line still being written is not sent
    assert await waiting == {"n": 1}
    _append(current, '2}\n')
    assert await _next_data(stream) == {"n": 2}
    os.rename(current, tmp_path / "t-1.20260101T000000000000Z.log")  # rotated by a writer
    current.write_text('{"n":3}\n')
    assert await _next_data(stream) == {"n": 3}
    started = asyncio.get_running_loop().time()
    with pytest.raises(StopAsyncIteration):
        while True:
            await asyncio.wait_for(stream.__anext__(), 5)
    assert asyncio.get_running_loop().time() - started < 2
