"""The pre-initialisation snapshot (build/snapshot.py) on a zig-built C reactor and on small WAT
modules for the corners zig does not produce (internal globals, passive segments, start)."""

from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import wasmtime

ROOT = Path(__file__).resolve().parents[2]


def _load_snapshot() -> ModuleType:
    # By path: a top-level package named `build` would clash with PyPA's `build`.
    spec = importlib.util.spec_from_file_location("wexec_snapshot", ROOT / "build" / "snapshot.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


snap = _load_snapshot()

REACTOR_C = r"""
#include <stdlib.h>
#include <string.h>

#define N 200000
static int count;
static unsigned char *heap;

void init(void) {
    heap = malloc(N);
    for (int i = 0; i < N; i++) heap[i] = (unsigned char)(i * 7 + 1);
    count = 42;
}

int get(void) { return count; }
int bump(void) { return ++count; }
void poke(int i, int v) { heap[i] = (unsigned char)v; }

unsigned checksum(void) {
    unsigned sum = 0;
    if (!heap) return 0;
    for (int i = 0; i < N; i++) sum = sum * 31 + heap[i];
    return sum;
}

/* Uses the shadow stack (a volatile array cannot live in wasm locals). */
unsigned stack_work(int n) {
    volatile unsigned char buf[4096];
    unsigned sum = 0;
    for (int i = 0; i < 4096; i++) buf[i] = (unsigned char)(i + n);
    for (int i = 0; i < 4096; i++) sum += buf[i];
    return sum;
}

/* Fresh allocations after the snapshot must not overlap the snapshotted heap. */
int alloc_fill(int n) {
    unsigned char *p = malloc(n);
    if (!p) return 0;
    memset(p, 0xAB, n);
    return (int)(long)p;
}
"""

EXPECTED_CHECKSUM = 0
for _i in range(200000):
    EXPECTED_CHECKSUM = (EXPECTED_CHECKSUM * 31 + ((_i * 7 + 1) & 0xFF)) & 0xFFFFFFFF


def _zig_cache() -> str:
    return os.path.join(os.environ.get("WEXEC_CACHE", os.path.expanduser("~/.cache/wexec")), "zig")


@pytest.fixture(scope="module")
def reactor(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    work = tmp_path_factory.mktemp("reactor")
    (work / "src.c").write_text(REACTOR_C)
    exports = ["init", "get", "bump", "poke", "checksum", "stack_work", "alloc_fill"]
    cmd = [
        sys.executable,
        "-m",
        "ziglang",
        "cc",
        "--target=wasm32-wasi",
        "-O2",
        "-mexec-model=reactor",
        "-s",
        *(f"-Wl,--export={e}" for e in exports),
        "src.c",
        "-o",
        "out.wasm",
    ]
    env = {**os.environ, "ZIG_GLOBAL_CACHE_DIR": _zig_cache()}
    subprocess.run(cmd, cwd=work, env=env, check=True, timeout=600)
    return (work / "out.wasm").read_bytes()


@pytest.fixture(scope="module")
def snapshotted(reactor: bytes) -> bytes:
    return bytes(snap.snapshot(reactor, init=("_initialize", "init")))


class Guest:
    """One fresh instance with its exports called by name."""

    def __init__(self, wasm: bytes) -> None:
        engine = wasmtime.Engine()
        module = wasmtime.Module(engine, wasm)
        self.store = wasmtime.Store(engine)
        self.store.set_wasi(wasmtime.WasiConfig())
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        linker.define_unknown_imports_as_traps(module)
        self.exports = linker.instantiate(self.store, module).exports(self.store)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        func = self.exports[name]
        return lambda *args: func(self.store, *args)  # type: ignore[operator]


def _memory_min(module: wasmtime.Module) -> int:
    mem = next(e.type for e in module.exports if isinstance(e.type, wasmtime.MemoryType))
    return mem.limits.min


def test_snapshot_starts_initialised_without_init(snapshotted: bytes) -> None:
    guest = Guest(snapshotted)
    assert guest.get() == 42
    assert guest.checksum() & 0xFFFFFFFF == EXPECTED_CHECKSUM


def test_init_exports_and_start_are_gone(snapshotted: bytes) -> None:
    names = {e.name for e in wasmtime.Module(wasmtime.Engine(), snapshotted).exports}
    assert "_initialize" not in names and "init" not in names
    assert {"get", "checksum", "stack_work"} <= names


def test_memory_minimum_grew(reactor: bytes, snapshotted: bytes) -> None:
    engine = wasmtime.Engine()
    before, after = (_memory_min(wasmtime.Module(engine, w)) for w in (reactor, snapshotted))
    assert after > before  # a 200 kB malloc needs more pages than the static image


def test_stack_pointer_restored_and_heap_intact(snapshotted: bytes) -> None:
    guest = Guest(snapshotted)
    assert guest.stack_work(3) == sum((i + 3) & 0xFF for i in range(4096))
    addr = guest.alloc_fill(100000)
    assert addr > 0
    assert guest.checksum() & 0xFFFFFFFF == EXPECTED_CHECKSUM
    assert guest.get() == 42


def test_instances_do_not_share_writes(snapshotted: bytes) -> None:
    first, second = Guest(snapshotted), Guest(snapshotted)
    assert first.bump() == 43
    first.poke(0, 0)
    assert second.get() == 42
    assert second.checksum() & 0xFFFFFFFF == EXPECTED_CHECKSUM
    assert Guest(snapshotted).get() == 42


def test_split_image_moves_the_memory_out(snapshotted: bytes) -> None:
    bare, image = snap.split_image(snapshotted)
    assert len(image) % 4096 == 0 and image.rstrip(b"\0")
    guest = Guest(bare)
    memory = guest.exports["memory"]
    assert guest.get() == 0  # nothing was copied in: the host maps the image itself
    memory.write(guest.store, image, 0)
    assert guest.get() == 42
    assert guest.checksum() & 0xFFFFFFFF == EXPECTED_CHECKSUM
    whole = Guest(snapshotted)
    size = whole.exports["memory"].data_len(whole.store)
    assert memory.read(guest.store, 0, size) == whole.exports["memory"].read(whole.store, 0, size)


def test_snapshot_is_deterministic(reactor: bytes, snapshotted: bytes) -> None:
    assert snap.snapshot(reactor, init=("_initialize", "init")) == snapshotted


def test_snapshot_file_and_cli(reactor: bytes, tmp_path: Path) -> None:
    src, dst = tmp_path / "in.wasm", tmp_path / "out.wasm"
    src.write_bytes(reactor)
    assert snap.snapshot_file(src, dst, init=("_initialize", "init")) == dst
    assert Guest(dst.read_bytes()).get() == 42
    cli = [
        sys.executable,
        str(ROOT / "build" / "snapshot.py"),
        str(src),
        str(tmp_path / "cli.wasm"),
    ]
    ok = subprocess.run([*cli, "--init", "_initialize,init"], capture_output=True, check=False)
    assert ok.returncode == 0
    assert (tmp_path / "cli.wasm").read_bytes() == dst.read_bytes()
    missing = subprocess.run(cli, capture_output=True, text=True, check=False)  # no wx_init here
    assert missing.returncode == 1 and "'wx_init'" in missing.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.wasm", "in.wasm", "out.wasm"]


WAT = """(module
  (import "wexec" "host_call" (func $host (result i32)))
  (memory 1 100)
  (global $g (mut i32) (i32.const 5))
  (global $wide (mut i64) (i64.const -1))
  (global $ran_start (mut f64) (f64.const 0))
  (global $k i32 (i32.const 77))
  (data $words "passive!")
  (data (i32.const 16) "active")
  (func $start (global.set $ran_start (f64.const 1.5)))
  (start $start)
  (func (export "init")
    (global.set $g (i32.const -123456))
    (global.set $wide (i64.const 0x7fffffffffff))
    (memory.init $words (i32.const 100) (i32.const 0) (i32.const 8))
    (drop (memory.grow (i32.const 2)))
    (i32.store (i32.const 140000) (i32.const 0x5eed)))
  (func (export "call_host") (drop (call $host)))
  (func (export "g") (result i32) (global.get $g))
  (func (export "wide") (result i64) (global.get $wide))
  (func (export "ran_start") (result f64) (global.get $ran_start))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "copy_words") (param i32) (memory.init $words (local.get 0) (i32.const 0) (i32.const 8)))
)"""


def test_internal_globals_passive_segments_and_start() -> None:
    out = snap.snapshot(wasmtime.wat2wasm(WAT), init=["init"])
    guest = Guest(out)
    assert (guest.g(), guest.wide(), guest.ran_start()) == (-123456, 0x7FFFFFFFFFFF, 1.5)
    assert guest.load(140000) == 0x5EED
    assert guest.load(16) == int.from_bytes(b"acti", "little")
    assert guest.load(100) == int.from_bytes(b"pass", "little")
    guest.copy_words(300)  # passive segment still addressable by its old index
    assert guest.load(304) == int.from_bytes(b"ive!", "little")
    names = {e.name for e in wasmtime.Module(wasmtime.Engine(), out).exports}
    assert not any(n.startswith("__wexec_snapshot_") for n in names) and "init" not in names


def test_host_import_during_init_is_refused_by_name() -> None:
    with pytest.raises(snap.SnapshotError, match=r"wexec\.host_call"):
        snap.snapshot(wasmtime.wat2wasm(WAT), init=["init", "call_host"])


def test_linker_setup_may_define_imports() -> None:
    def setup(linker: wasmtime.Linker) -> None:
        ty = wasmtime.FuncType([], [wasmtime.ValType.i32()])
        linker.define_func("wexec", "host_call", ty, lambda: 7)

    out = snap.snapshot(wasmtime.wat2wasm(WAT), init=["init", "call_host"], linker_setup=setup)
    assert Guest(out).g() == -123456


def test_init_failure_names_the_export() -> None:
    def setup(linker: wasmtime.Linker) -> None:
        def fail() -> int:
            raise RuntimeError("no host calls at snapshot time")

        linker.define_func(
            "wexec", "host_call", wasmtime.FuncType([], [wasmtime.ValType.i32()]), fail
        )

    with pytest.raises(snap.SnapshotError, match="'call_host' failed: no host calls"):
        snap.snapshot(wasmtime.wat2wasm(WAT), init=["init", "call_host"], linker_setup=setup)


def test_imported_memory_is_refused() -> None:
    wasm = wasmtime.wat2wasm('(module (import "env" "mem" (memory 1)))')
    with pytest.raises(snap.SnapshotError, match="one memory"):
        snap.snapshot(wasm, init=())


def test_sparse_memory_is_capped_in_segments() -> None:
    fill = "".join(f"(i32.store8 (i32.const {i * 128}) (i32.const 1))" for i in range(3000))
    wasm = wasmtime.wat2wasm(f'(module (memory (export "m") 8) (func (export "i") {fill}))')
    out = snap.snapshot(wasm, init=["i"])
    guest = Guest(out)
    mem = guest.exports["m"]
    assert isinstance(mem, wasmtime.Memory)
    data = mem.read(guest.store, 0, 3000 * 128)
    assert all(data[i * 128] == 1 for i in range(3000)) and sum(data) == 3000
    assert snap._Reader(snap._split(out)[snap.DATA]).leb() <= snap.MAX_SEGMENTS


def test_segments_merge_short_zero_gaps_only() -> None:
    image = bytes(10) + b"ab" + bytes(63) + b"cd" + bytes(64) + b"ef" + bytes(5)
    assert snap._segments(image) == [
        b"\x00\x41\x0a\x0b" + bytes([67]) + image[10:77],
        b"\x00\x41\x8d\x01\x0b\x02ef",  # offset 141
    ]


def _median_us(fn: Callable[[], object], runs: int = 200) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def test_instantiate_timing(reactor: bytes, snapshotted: bytes, tmp_path: Path) -> None:
    """Printed, not asserted: timings depend on the machine. Run with -s to see them."""
    engine = wasmtime.Engine()
    pres = {}
    for label, wasm in (("plain", reactor), ("snapshot", snapshotted)):
        path = tmp_path / f"{label}.cwasm"
        path.write_bytes(wasmtime.Module(engine, wasm).serialize())
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        pres[label] = linker.instantiate_pre(wasmtime.Module.deserialize_file(engine, str(path)))

    def plain() -> None:
        store = wasmtime.Store(engine)
        store.set_wasi(wasmtime.WasiConfig())
        exports = pres["plain"].instantiate(store).exports(store)
        exports["_initialize"](store)  # type: ignore[operator]
        exports["init"](store)  # type: ignore[operator]

    def snapshot() -> None:
        store = wasmtime.Store(engine)
        store.set_wasi(wasmtime.WasiConfig())
        pres["snapshot"].instantiate(store)

    print(
        f"\nreactor {len(reactor)} B -> snapshot {len(snapshotted)} B; "
        f"instantiate+init {_median_us(plain):.0f} us, snapshot instantiate "
        f"{_median_us(snapshot):.0f} us (medians of 200)"
    )
