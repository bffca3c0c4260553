"""The schedule history file: rotated and compressed like the other logs (`observe.logfiles`),
read back newest first across rotated files, written by several processes at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from runtime.observe import logfiles
from runtime.schedules import fires
from runtime.schedules.fires import FiresLog
from tests.support import eventually


def _rotated_all_compressed(folder: Path) -> bool:
    rotated = logfiles.tenant_files(folder, fires.STEM, "rotated")
    return bool(rotated) and all(f.compressed for f in rotated)


def test_history_spans_rotated_compressed_files_newest_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fires, "ROTATE_BYTES", 200)  # a few lines a file
    monkeypatch.setattr(fires, "COMPRESS_DELAY_S", 0.0)
    log = FiresLog(tmp_path)
    for n in range(42):
        log.append({"ts": f"2026-01-01T00:00:{n:02d}Z", "scriptRel": f"{n % 2}.ts", "n": n})
    eventually(lambda: _rotated_all_compressed(tmp_path))
    files = logfiles.tenant_files(tmp_path, fires.STEM)
    assert len(files) > 5 and all(f.name.endswith(".log.zst") for f in files if f.rotated)
    assert {p.name for p in tmp_path.iterdir() if not p.name.startswith(".")} == {
        f.name for f in files}
    everything = [r["n"] for r in log.newest(1000, include_rotated=True)]
    assert everything == list(range(41, -1, -1))
    current = [r["n"] for r in log.newest(1000, include_rotated=False)]
    assert current == everything[:len(current)] and 0 < len(current) < 42
    # a limit that ends inside a compressed file, and a filter across files
    assert [r["n"] for r in log.newest(7, include_rotated=True)] == list(range(41, 34, -1))
    odd = log.newest(6, include_rotated=True, wanted=lambda r: r["scriptRel"] == "1.ts")
    assert [r["n"] for r in odd] == [41, 39, 37, 35, 33, 31]


def test_the_history_keeps_within_its_disk_quota(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fires, "ROTATE_BYTES", 4096)
    monkeypatch.setattr(fires, "DISK_BYTES", 3 * 4096)
    monkeypatch.setattr(fires, "COMPRESS_DELAY_S", 0.0)
    log = FiresLog(tmp_path)
    noise = "".join(f"{i:08x}" for i in range(40))  # compresses poorly enough to matter
    for n in range(2000):
        log.append({"n": n, "noise": noise[n % 7:]})

    def settled() -> bool:
        files = logfiles.tenant_files(tmp_path, fires.STEM)
        return _rotated_all_compressed(tmp_path) and sum(f.size for f in files) <= 3 * 4096

    eventually(settled)
    kept = [r["n"] for r in log.newest(2000, include_rotated=True)]
    assert kept[0] == 1999 and kept == list(range(1999, 1999 - len(kept), -1))
    assert len(kept) < 2000  # the oldest went


def _append_many(folder: str, writer: int, count: int) -> None:
    fires.ROTATE_BYTES = 2048
    fires.COMPRESS_DELAY_S = 0.2
    log = FiresLog(Path(folder))
    for n in range(count):
        log.append({"writer": writer, "n": n, "scriptRel": "a.ts", "pad": "x" * 40})


def test_processes_appending_at_once_lose_and_repeat_no_line(tmp_path: Path) -> None:
    """Three processes append while the file rotates under them (a rotation every ~25 lines):
    every line is afterwards in exactly one file, whole, and every rotated file is compressed."""
    context = multiprocessing.get_context("spawn")
    count = 400
    procs = [context.Process(target=_append_many, args=(str(tmp_path), w, count))
             for w in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    # a rotation's compression runs on a daemon thread of the process that rotated: one that
    # exited before compressing leaves a plain rotated file, read as it is and compressed by
    # the next rotation
    seen = sorted((r["writer"], r["n"]) for r in FiresLog(tmp_path).newest(10_000,
                                                                           include_rotated=True))
    assert seen == [(w, n) for w in range(3) for n in range(count)]
    assert len(logfiles.tenant_files(tmp_path, fires.STEM, "rotated")) >= 20
    logfiles.compress_rotated(tmp_path, fires.STEM, fires.DISK_BYTES)
    assert _rotated_all_compressed(tmp_path)
    again = sorted((r["writer"], r["n"]) for r in FiresLog(tmp_path).newest(10_000,
                                                                            include_rotated=True))
    assert again == seen
