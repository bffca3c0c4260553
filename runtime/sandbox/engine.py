"""The one wasmtime engine of a process: the guest module, its linker, and the epoch ticker.

Start-up goes build → snapshot → split → compile, each step cached on disk by content: the guest
build by the hash of its sources, the Wizer-style snapshot beside it, split into a bare module
and its memory image (which ``memory.ImageMemories`` maps into every instance), and Cranelift's
machine code for the bare module as a ``.cwasm`` loaded with ``Module.deserialize_file``. Only
the first start on a machine pays for compiling.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import struct
import tempfile
import threading
from pathlib import Path

import wasmtime

from runtime.buildtools import load_build_module
from runtime.config import Settings
from runtime.host import HostError
from runtime.host.registry import Registry
from runtime.sandbox import _capi, native
from runtime.sandbox.instance import STORE_SLACK, NativeEngine, running
from runtime.sandbox.memory import ImageMemories

_ARGS = struct.Struct("<I12xi12xI12xi12xI12xi12x")
"""``host_call``'s six arguments, each the low 32 bits of a 16-byte ``wasmtime_val_raw``;
pointers unsigned (linear memory may pass 2 GiB), lengths signed."""

ENGINE_CONFIG = {"epoch_interruption": True, "cranelift_opt_level": "speed", "memory_may_move": False}
"""wasmtime settings; machine code compiled under one set is invalid under another, so they
name the cached ``.cwasm``."""


def _host_call_type() -> wasmtime.FuncType:
    """``host_call``'s signature; made per engine, since wasmtime ties types to one engine."""
    i32 = wasmtime.ValType.i32()
    return wasmtime.FuncType([i32] * 6, [i32])


class GuestEngine:
    """Owns everything shared by all stores: Engine → Module → InstancePre."""

    def __init__(self, settings: Settings, registry: Registry) -> None:
        self.settings = settings
        self.registry = registry
        bare, image, self.guest_hash = self._prepare()
        self.memories = ImageMemories.of(image, settings.cache_dir)
        config = wasmtime.Config()
        for name, value in ENGINE_CONFIG.items():
            setattr(config, name, value)
        self.memories.install(config)
        self.engine = wasmtime.Engine(config)
        self.module = wasmtime.Module.deserialize_file(self.engine, str(self._machine_code(bare)))
        linker = wasmtime.Linker(self.engine)
        linker.define_wasi()
        # instance.c answers host_call when it can (shared.get), and calls _host_call otherwise
        lib = native.library(settings.cache_dir)
        self._host_call_handle = _capi.unchecked_callback("wexec", "host_call", self._host_call)
        self._host_call_env = ctypes.c_void_p(ctypes.cast(self._host_call_handle, ctypes.c_void_p).value)
        _capi.define_native(
            linker, "wexec", "host_call", _host_call_type(),
            ctypes.cast(lib.wxi_host_call, ctypes.c_void_p).value or 0,
            ctypes.addressof(self._host_call_env),
        )
        self.pre = linker.instantiate_pre(self.module)
        self.native = NativeEngine(settings.cache_dir, self.engine, self.pre)
        self.memory_bytes = next(
            e.type.limits.min * 65536 for e in self.module.exports
            if isinstance(e.type, wasmtime.MemoryType)
        )
        """Linear memory's size in a new instance of the snapshot (a serverless image's may be
        larger: its top level grew it)."""
        self._ticker = _EpochTicker(self.engine, settings.epoch_tick_ms / 1000.0)

    def deadline_ticks(self, budget_ms: float | None) -> int:
        """Epoch ticks for a crossing: the guest's own interrupt should fire first."""
        if budget_ms is None:
            return 1 << 62
        return int(budget_ms / self.settings.epoch_tick_ms) + 3

    def close(self) -> None:
        self._ticker.stop()

    # -- start-up ---------------------------------------------------------------------------

    def _prepare(self) -> tuple[Path, Path, str]:
        """The snapshot split into its bare module and memory image: (bare, image, guest hash)."""
        guest = load_build_module("guest")
        wasm = Path(guest.build_guest(self.settings.cache_dir))
        os.utime(wasm.parent)  # in use: pruning old builds spares it (build/guest.py)
        snap = wasm.with_name("engine.snap.wasm")
        bare, image = wasm.with_name("engine.bare.wasm"), wasm.with_name("engine.image")
        if not (bare.exists() and image.exists()):
            snapshot = load_build_module("snapshot")
            if not snap.exists():
                snapshot.snapshot_file(wasm, snap, linker_setup=_refuse_host_calls)
            module, memory = snapshot.split_image(snap.read_bytes())
            _atomic_write(image, memory)
            _atomic_write(bare, module)
        return bare, image, wasm.parent.name  # builds are kept by hash (build/guest.py)

    def _machine_code(self, bare: Path) -> Path:
        cwasm = bare.with_name(f"engine.bare.{_machine_code_tag()}.cwasm")
        if not cwasm.exists():
            _atomic_write(cwasm, wasmtime.Module(self.engine, bare.read_bytes()).serialize())
        return cwasm

    def _host_call(self, caller: int, args: int) -> None:
        """The guest's ``host_call`` (ABI.md), from the instance whose crossing runs on this
        thread: six i32 arguments in, the result's length (negative: an error's) out.

        Its buffers are read and written through a view of the instance's linear memory, no
        longer than the store may ever grow it: whatever pointers reach here, nothing outside
        the guest's own memory is read or written."""
        instance = running.instance
        assert instance is not None
        memory = instance.memory_view
        if memory is None:
            memory = instance.memory_view = _capi.memory_view(
                _capi.caller_memory_base(caller), instance.memory_limit + STORE_SLACK
            )
        name_ptr, name_len, in_ptr, in_len, out_ptr, cap = _ARGS.unpack(_capi.string_at(args, 96))
        if cap < 0 or out_ptr + cap > len(memory):
            raise RuntimeError("host_call's output buffer lies outside the guest's memory")
        name = str(memory[name_ptr : name_ptr + name_len], "utf-8")
        data = bytes(memory[in_ptr : in_ptr + in_len])
        try:
            result = self.registry.call(name, data, instance.caller)
            if len(result) > cap:
                raise ValueError(f"{name}: result of {len(result)} bytes exceeds {cap}")
        except (HostError, ValueError) as exc:
            msg = str(exc).encode()[:cap]
            memory[out_ptr : out_ptr + len(msg)] = msg
            _capi.store_i32(args, -len(msg))
            return
        memory[out_ptr : out_ptr + len(result)] = result
        _capi.store_i32(args, len(result))


def _machine_code_tag() -> str:
    """What compiled machine code depends on besides the module: wasmtime's build and settings.

    The library file stands for the wasmtime build (reading package metadata would cost a
    millisecond of every start).
    """
    lib = os.stat(_capi.b.dll._name)
    key = f"{lib.st_size}:{lib.st_mtime_ns}:{sorted(ENGINE_CONFIG.items())}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _refuse_host_calls(linker: wasmtime.Linker) -> None:
    """Snapshot-time linker: the guest must not reach the host while it initialises."""

    def refuse(*_args: object) -> int:
        raise RuntimeError("wexec.host_call was called during guest initialisation")

    linker.define_func("wexec", "host_call", _host_call_type(), refuse)


def _atomic_write(path: Path, data: bytes | bytearray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class _EpochTicker:
    """Advances the engine's epoch so every store's deadline is checked at this granularity."""

    def __init__(self, engine: wasmtime.Engine, period_s: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(engine, period_s), name="wexec-epoch", daemon=True
        )
        self._thread.start()

    def _run(self, engine: wasmtime.Engine, period_s: float) -> None:
        while not self._stop.wait(period_s):
            engine.increment_epoch()

    def stop(self) -> None:
        self._stop.set()
