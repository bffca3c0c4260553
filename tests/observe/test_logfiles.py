"""Request log files on disk: rotation shared by writers, zstd, the disk quota, confinement."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from runtime.observe import access_log, logfiles
from runtime.observe.access_log import AccessLog, Entry, plain
from runtime.observe.logquery import Matcher, search
from tests.support import eventually

ROTATE = 64 * 1024


def _queue(log: AccessLog, n: int, pad: str) -> None:
    """Request `n`'s line (its number as its script, `pad` as its path) at `minimal`."""
    log.add("t-1", Entry(str(n), "GET", pad, 200, 0, 1.0), "minimal", False, None)


def _number(line: str) -> int:
    return int(json.loads(line)["script"])


def _all_lines(logs: Path, slug: str) -> list[str]:
    return [line for f in reversed(logfiles.tenant_files(logs, slug)) for line in logfiles.lines(f.path)]


async def test_two_writers_rotate_one_file_and_lose_no_line(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Two `AccessLog`s on one folder stand for two server processes: each line written is in
    exactly one file afterwards, rotated files are compressed, and only `.log` or `.log.zst`
    files of the tenant remain."""
    monkeypatch.setattr(access_log, "COMPRESS_DELAY_S", 0.05)
    writers = [AccessLog(tmp_path, ROTATE, 64 * ROTATE) for _ in range(2)]
    total = 3000
    for n in range(total):
        _queue(writers[n % 2], n, "x" * 100)
        if n % 100 == 99:
            for w in writers:
                w.flush()
            await asyncio.sleep(0)
    for w in writers:
        w.close()

    def compressed() -> bool:
        rotated = logfiles.tenant_files(tmp_path, "t-1", "rotated")
        return bool(rotated) and all(f.compressed for f in rotated)

    eventually(compressed)
    numbers = sorted(_number(line) for line in _all_lines(tmp_path, "t-1"))
    assert numbers == list(range(total))
    files = logfiles.tenant_files(tmp_path, "t-1")
    assert len(files) >= 4 and files[0].name == "t-1.log" and not files[0].rotated
    assert all(f.name.endswith(".log.zst") for f in files[1:])
    assert {p.name for p in tmp_path.iterdir() if not p.name.startswith(".")} == {f.name for f in files}


async def test_the_disk_quota_drops_the_oldest_rotated_files(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(access_log, "COMPRESS_DELAY_S", 0.0)
    quota = 3 * ROTATE
    log = AccessLog(tmp_path, ROTATE, quota)
    noise = "".join(f"{i:08x}" for i in range(400))  # compresses poorly enough to matter
    for n in range(4000):
        _queue(log, n, noise[n % 7:])
        if n % 50 == 49:
            log.flush()
            await asyncio.sleep(0.002)
    log.close()
    await asyncio.sleep(0.3)
    logfiles.compress_rotated(tmp_path, "t-1", quota)  # what the last rotation's thread does
    files = logfiles.tenant_files(tmp_path, "t-1")
    assert sum(f.size for f in files) <= quota
    newest = [_number(line) for line in logfiles.lines(files[0].path)]
    assert newest[-1] == 3999  # the newest lines are the ones kept


def test_a_rotated_compressed_file_is_searched_like_the_current_one(tmp_path: Path) -> None:
    log_path = tmp_path / "t-1.20260101T000000000000Z.log"
    log_path.write_text('{"msg":"old-needle"}\n{"msg":"other"}\n')
    logfiles.compress_rotated(tmp_path, "t-1", 10**9)
    (tmp_path / "t-1.log").write_text('{"msg":"new-needle"}\n')
    found = search(logfiles.tenant_files(tmp_path, "t-1"), Matcher.of(None, "NEEDLE", False), 10)
    assert [(m["file"], m["entry"]["msg"]) for m in found.matches] == [
        ("t-1.log", "new-needle"), ("t-1.20260101T000000000000Z.log.zst", "old-needle"),
    ]


def test_a_tenant_has_only_its_own_files(tmp_path: Path) -> None:
    for name in ("a-1.log", "a-1-2.log", "a-12.log", "a-1.20260101T000000000000Z.log.zst",
                 "a-1.notes.txt", "a-1..log"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "a-1.20260101T000000000001Z.log.zst").symlink_to(tmp_path / "a-1-2.log")
    names = [f.name for f in logfiles.tenant_files(tmp_path, "a-1")]
    assert names == ["a-1.log", "a-1.20260101T000000000000Z.log.zst"]
    for outside in ("a-1-2.log", "../a-1.log", "a-1.notes.txt", "a-1.20260101T000000000001Z.log.zst"):
        assert logfiles.resolve(tmp_path, "a-1", outside) is None


@pytest.mark.parametrize(("text", "shown"), [
    ("a\x1b[31mred\x1b[0m b", "ared b"),
    ("x\x1b]0;title\x07y", "xy"),
    ("x\x1b]8;;http://e\x1b\\link\x1b]8;;\x1b\\y", "xlinky"),
    ("\x9b2Jclear\x1bc", "clear"),
    ("bell\x07 back\x08space\r", "bell backspace"),
    ("tabs\tand\nnewlines stay", "tabs\tand\nnewlines stay"),
    ("ünïcødé ✓", "ünïcødé ✓"),
])
def test_terminal_control_is_stripped_from_console_lines(text: str, shown: str) -> None:
    assert plain(text) == shown
