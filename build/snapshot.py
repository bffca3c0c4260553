"""Pre-initialise a wasm module: run its init exports once, then bake the resulting state into it.

This is the Wizer technique. Engine start-up (wasi-libc constructors, the QuickJS runtime) costs
a few hundred microseconds per instance; a snapshot carries that state in its data section, so
every instance starts initialised and wasmtime maps its memory copy-on-write.

Only what init can change is rewritten: linear memory (data section, memory minimum), mutable
globals, the init exports and the start section. Other sections are copied byte for byte;
custom sections are dropped because what they index (names, debug info) may no longer match.

Usage: python build/snapshot.py in.wasm out.wasm [--init _initialize,wx_init]
"""

from __future__ import annotations

import argparse
import os
import re
import struct
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import wasmtime

MAGIC = b"\0asm\x01\0\0\0"
IMPORT, MEMORY, GLOBAL, EXPORT, START, DATA, DATACOUNT = 2, 5, 6, 7, 8, 11, 12
ORDER = (1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11)  # the order the binary format requires
FUNC, TABLE, MEMORY_KIND, GLOBAL_KIND, TAG = 0, 1, 2, 3, 4  # import/export kinds
ZERO_GAP = 64  # zero runs shorter than this stay inside a segment: fewer, larger segments
MAX_SEGMENTS = 1024  # past this, the gap doubles until the segments fit
PROBE = "__wexec_snapshot_"  # prefix of the temporary exports that expose internal state

Global = tuple[bytes, bool, bytes]  # value type, mutable, constant init expression
Export = tuple[bytes, int, int]  # name, kind, index


class SnapshotError(Exception):
    """The module cannot be snapshotted as asked; the message says what to change."""


class _Reader:
    """A cursor over a validated module's bytes, decoding only what a snapshot touches."""

    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = buf, 0

    def byte(self) -> int:
        self.pos += 1
        return self.buf[self.pos - 1]

    def take(self, n: int) -> bytes:
        self.pos += n
        return self.buf[self.pos - n : self.pos]

    def leb(self, signed: bool = False) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return result - (1 << shift) if signed and b & 0x40 else result

    def name(self) -> bytes:
        return self.take(self.leb())

    def vec(self, item: Callable[[], Any]) -> list[Any]:
        return [item() for _ in range(self.leb())]

    def valtype(self) -> bytes:
        start = self.pos
        if self.byte() in (0x63, 0x64):  # (ref null? heaptype), typed function references
            self.leb(signed=True)
        return self.buf[start : self.pos]

    def limits(self) -> tuple[int, int, int | None]:
        flags, minimum = self.leb(), self.leb()
        maximum = self.leb() if flags & 1 else None
        if flags & 8:  # custom page size
            self.leb()
        return flags, minimum, maximum

    def const_expr(self) -> bytes:
        """Skip a constant expression: scanning for `end` would stop inside an immediate."""
        start = self.pos
        while (op := self.byte()) != 0x0B:
            if op in (0x41, 0x42):  # i32.const, i64.const
                self.leb(signed=True)
            elif op in (0x43, 0x44):  # f32.const, f64.const
                self.take(4 if op == 0x43 else 8)
            elif op in (0x23, 0xD2):  # global.get, ref.func
                self.leb()
            elif op == 0xD0:  # ref.null
                self.valtype()
            elif op == 0xFD:  # v128.const, the only constant SIMD instruction
                self.leb(), self.take(16)
            elif op not in (0x6A, 0x6B, 0x6C, 0x7C, 0x7D, 0x7E):  # extended-const arithmetic
                raise SnapshotError(f"unsupported opcode 0x{op:02x} in a constant expression")
        return self.buf[start : self.pos]


def _leb(n: int) -> bytes:
    """LEB128 of `n`, signed when `n` is negative or needs its sign bit."""
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        done = (n == 0 and not b & 0x40) or (n == -1 and b & 0x40)
        out.append(b | (0 if done else 0x80))
        if done:
            return bytes(out)


def _uleb(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def _name(raw: bytes) -> bytes:
    return _uleb(len(raw)) + raw


def _vec(items: Sequence[bytes]) -> bytes:
    return _uleb(len(items)) + b"".join(items)


def _signed(value: int, bits: int) -> int:
    """Two's-complement view of an integer: `iNN.const` immediates are signed."""
    return (value + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1))


def _split(wasm: bytes) -> dict[int, bytes]:
    sections, r = {}, _Reader(wasm)
    r.pos = len(MAGIC)
    while r.pos < len(wasm):
        sid, payload = r.byte(), r.name()
        if sid != 0:
            sections[sid] = payload
    return sections


def _assemble(sections: dict[int, bytes]) -> bytes:
    return MAGIC + b"".join(bytes([s]) + _name(sections[s]) for s in ORDER if s in sections)


def _imports(payload: bytes) -> tuple[int, int]:
    """Count imported globals and memories: they come first in their index spaces."""
    r, counts = _Reader(payload), [0] * 5
    for _ in range(r.leb()):
        r.name(), r.name()
        kind = r.byte()
        counts[kind] += 1
        if kind in (FUNC, TAG):
            r.take(kind == TAG), r.leb()  # a tag has an attribute byte before its type index
        elif kind == TABLE:
            r.valtype(), r.limits()
        elif kind == MEMORY_KIND:
            r.limits()
        else:
            r.valtype(), r.byte()
    return counts[GLOBAL_KIND], counts[MEMORY_KIND]


def _exports(exports: Sequence[Export]) -> bytes:
    return _vec([_name(name) + bytes([kind]) + _uleb(index) for name, kind, index in exports])


def _const(valtype: bytes, value: Any) -> bytes:
    """A constant expression that reproduces a captured global value exactly."""
    if valtype == b"\x7f":
        return b"\x41" + _leb(_signed(value, 32)) + b"\x0b"
    if valtype == b"\x7e":
        return b"\x42" + _leb(_signed(value, 64)) + b"\x0b"
    if valtype == b"\x7d":
        return b"\x43" + struct.pack("<f", value) + b"\x0b"
    if valtype == b"\x7c":
        return b"\x44" + struct.pack("<d", value) + b"\x0b"
    if value is None and valtype in (b"\x70", b"\x6f"):
        return b"\xd0" + valtype + b"\x0b"
    raise SnapshotError(f"cannot bake a mutable global of type 0x{valtype.hex()} holding {value!r}")


def _kept_segments(payload: bytes) -> list[bytes]:
    """The old segments, so that `memory.init`/`data.drop` indices stay valid.

    Passive segments are copied verbatim. Active ones become empty passive ones, which behave
    as an active segment does once instantiated: dropped, length 0.
    """
    r, kept = _Reader(payload), []
    for _ in range(r.leb()):
        start, flags = r.pos, r.leb()
        if flags == 2:
            r.leb()
        if flags != 1:
            r.const_expr()
        r.name()
        kept.append(payload[start : r.pos] if flags == 1 else b"\x01\x00")
    return kept


def _segments(image: bytes) -> list[bytes]:
    """Active segments for the non-zero runs of memory, merged across short zero gaps."""
    runs, gap = [m.span() for m in re.finditer(rb"[^\x00]+", image)], ZERO_GAP
    while True:
        merged: list[tuple[int, int]] = []
        for start, end in runs:
            if merged and start - merged[-1][1] < gap:
                merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        if len(merged) <= MAX_SEGMENTS:
            return [
                b"\0\x41" + _leb(_signed(s, 32)) + b"\x0b" + _name(image[s:e]) for s, e in merged
            ]
        runs, gap = merged, gap * 2


def _refuse_missing(
    linker: wasmtime.Linker, store: wasmtime.Store, imp: wasmtime.ImportType
) -> None:
    """Give an import nobody defined a body that fails loudly: init must not reach the host."""
    where, name = f"{imp.module}.{imp.name}", imp.name or ""
    try:
        linker.get(store, imp.module, name)
        return
    except wasmtime.WasmtimeError:
        pass
    if not isinstance(imp.type, wasmtime.FuncType):
        raise SnapshotError(f"import {where} is not a function: define it with linker_setup")

    def refuse(*_: Any) -> None:
        raise SnapshotError(
            f"host import {where} was called during initialisation; a snapshot cannot hold "
            "host state: call it after instantiation, or define it with linker_setup"
        )

    linker.define_func(imp.module, name, imp.type, refuse)


def _run(
    probe: bytes,
    init: Sequence[str],
    linker_setup: Callable[[wasmtime.Linker], None] | None,
) -> tuple[wasmtime.Store, Mapping[str, Any]]:
    """Instantiate the probe module and call the init exports; return the store and exports."""
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, probe)
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    if linker_setup is not None:
        linker_setup(linker)
    for imp in module.imports:
        _refuse_missing(linker, store, imp)
    exports = linker.instantiate(store, module).exports(store)
    for name in init:
        func = exports.get(name)
        if not isinstance(func, wasmtime.Func):
            raise SnapshotError(f"the module exports no function {name!r} to initialise with")
        try:
            func(store)
        except SnapshotError:
            raise
        except Exception as e:  # a trap, or whatever a host function defined by linker_setup raised
            raise SnapshotError(f"init export {name!r} failed: {e}") from e
    return store, exports


def snapshot(
    wasm: bytes,
    *,
    init: Sequence[str] = ("_initialize", "wx_init"),
    linker_setup: Callable[[wasmtime.Linker], None] | None = None,
) -> bytes:
    """Call the `init` exports once (WASI available, other imports refused unless `linker_setup`
    defines them) and return the module rewritten to start in the state they left."""
    wasm = bytes(wasm)
    try:
        wasmtime.Module.validate(wasmtime.Engine(), wasm)
    except wasmtime.WasmtimeError as e:
        raise SnapshotError(f"not a valid module: {e}") from e
    sections = _split(wasm)
    imported_globals, imported_memories = _imports(sections.get(IMPORT, b"\0"))
    g, x, m = (_Reader(sections.get(sid, b"\0")) for sid in (GLOBAL, EXPORT, MEMORY))
    globals_: list[Global] = g.vec(lambda: (g.valtype(), bool(g.byte()), g.const_expr()))
    exports: list[Export] = x.vec(lambda: (x.name(), x.byte(), x.leb()))
    memories = m.vec(m.limits)
    if imported_memories or len(memories) > 1:
        raise SnapshotError(
            "only a module that defines its one memory (or none) can be snapshotted"
        )
    if memories and memories[0][0] & ~1:
        raise SnapshotError("shared, 64-bit and custom-page memories are not supported")

    # Adding exports changes no index space, so the probe's state is the original's state.
    mutable = [i for i, (_, is_mutable, _) in enumerate(globals_) if is_mutable]
    probes = [(f"{PROBE}{i}".encode(), GLOBAL_KIND, imported_globals + i) for i in mutable]
    probes += [(f"{PROBE}memory".encode(), MEMORY_KIND, 0)] if memories else []
    store, probed = _run(
        _assemble({**sections, EXPORT: _exports(exports + probes)}), init, linker_setup
    )

    out = {sid: payload for sid, payload in sections.items() if sid != START}
    init_names = {name.encode() for name in init}
    out[EXPORT] = _exports([e for e in exports if e[0] not in init_names])
    for i in mutable:
        valtype = globals_[i][0]
        globals_[i] = (valtype, True, _const(valtype, probed[f"{PROBE}{i}"].value(store)))
    if globals_:
        out[GLOBAL] = _vec([valtype + bytes([m]) + expr for valtype, m, expr in globals_])
    if memories:
        memory, maximum = probed[f"{PROBE}memory"], memories[0][2]
        pages = _uleb(memory.size(store))
        out[MEMORY] = _vec([b"\0" + pages if maximum is None else b"\1" + pages + _uleb(maximum)])
        segments = _kept_segments(sections.get(DATA, b"\0")) if DATACOUNT in sections else []
        segments += _segments(bytes(memory.read(store, 0, memory.data_len(store))))
        out[DATA] = _vec(segments)
        if DATACOUNT in sections:
            out[DATACOUNT] = _uleb(len(segments))
    return _assemble(out)


def split_image(wasm: bytes, page: int = 4096) -> tuple[bytes, bytes]:
    """Move the active data segments out of a module: (the module without them, memory image).

    The image is linear memory as those segments leave it at instantiation, cut after its last
    non-zero ``page``. A host that maps the image into each instance's memory itself (see
    ``runtime/sandbox/memory.py``) instantiates the bare module with nothing to copy. Only
    segments at constant ``i32`` offsets are movable; passive ones stay, as do their indices.
    """
    sections = _split(bytes(wasm))
    m = _Reader(sections.get(MEMORY, b"\0"))
    memories = m.vec(m.limits)
    if len(memories) != 1:
        raise SnapshotError("only a module that defines exactly one memory has an image")
    image = bytearray(memories[0][1] * 65536)
    r = _Reader(sections.get(DATA, b"\0"))
    for _ in range(r.leb()):
        flags = r.leb()
        if flags == 1:
            r.name()
            continue
        if flags != 0:
            raise SnapshotError("data segments for a memory other than the first are not supported")
        expr = r.const_expr()
        if expr[:1] != b"\x41" or expr[-1:] != b"\x0b":
            raise SnapshotError("a data segment's offset is not an i32.const")
        offset, data = _Reader(expr[1:-1]).leb(signed=True) & 0xFFFFFFFF, r.name()
        if offset + len(data) > len(image):
            raise SnapshotError("a data segment lies outside the memory's minimum size")
        image[offset : offset + len(data)] = data
    out = dict(sections)
    segments = _kept_segments(sections.get(DATA, b"\0")) if DATACOUNT in sections else []
    out[DATA] = _vec(segments)
    end = -(-len(image.rstrip(b"\0")) // page) * page
    return _assemble(out), bytes(image[:end])


def snapshot_file(src: Path, dst: Path, **kw: Any) -> Path:
    """Snapshot `src` into `dst` atomically: readers never see a half-written module."""
    dst = Path(dst)
    data = snapshot(Path(src).read_bytes(), **kw)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    except BaseException:
        os.unlink(tmp)
        raise
    return dst


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pre-initialise a wasm module (Wizer technique).")
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--init", default="_initialize,wx_init", help="exports to call, in order")
    args = parser.parse_args(argv)
    try:
        snapshot_file(args.src, args.dst, init=[n for n in args.init.split(",") if n])
    except (SnapshotError, OSError) as e:
        print(f"snapshot: {args.src}: {e}", file=sys.stderr)
        return 1
    print(f"{args.src} ({args.src.stat().st_size} B) -> {args.dst} ({args.dst.stat().st_size} B)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
