"""The raw wasmtime C API the host uses from Python: unchecked host functions and traps.

wasmtime-py's ``Func`` wrappers rebuild type objects on every call (~10 µs); unchecked
callbacks take their arguments as raw values in place. Crossings into the guest go through
``instance.c``, and everything off the request path (engine, module, linker set-up) stays on
wasmtime-py's public API.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from ctypes import POINTER, byref, c_void_p
from typing import Any

import wasmtime
from wasmtime import _bindings as b

ValRaw = b.wasmtime_val_raw
Extern = b.wasmtime_extern
MemoryRef = b.wasmtime_memory_t

_memory_data = b._wasmtime_memory_data
_caller_export_get = b._wasmtime_caller_export_get
_caller_context = b._wasmtime_caller_context
_trap_new = b._wasmtime_trap_new
_NO_FINALIZER = ctypes.cast(0, ctypes.CFUNCTYPE(None, c_void_p))

string_at = ctypes.string_at
memmove = ctypes.memmove
_i32_at = ctypes.c_int32.from_address


def memory_view(base: int, size: int) -> memoryview:
    """Bytes ``base`` to ``base + size`` of this process, as a view that slices without copying
    and cannot be sliced past its end (only for memory that outlives the view)."""
    return memoryview((ctypes.c_ubyte * size).from_address(base)).cast("B")


def store_i32(address: int, value: int) -> None:
    """Write ``value`` as the i32 at ``address`` (a host function's result)."""
    _i32_at(address).value = value


class GuestTrap(Exception):
    """The guest trapped (or wasmtime refused the call): its store must be dropped."""

    def __init__(self, message: str, *, interrupted: bool = False) -> None:
        super().__init__(message)
        self.interrupted = interrupted


def memory_base(ctx: object, memory: MemoryRef) -> int:
    """Address of linear memory in this process (stable while the store lives: no moving)."""
    return ctypes.cast(_memory_data(ctx, byref(memory)), c_void_p).value or 0


def caller_memory_base(caller: int) -> int:
    """The address of the calling instance's linear memory (its export ``memory``); ``caller``
    is the ``wasmtime_caller_t`` address a host function gets."""
    item = Extern()
    ref = ctypes.cast(caller, POINTER(b.wasmtime_caller_t))
    if not _caller_export_get(ref, b"memory", 6, byref(item)):
        raise RuntimeError("guest exports no memory")
    return memory_base(_caller_context(ref), item.of.memory)


def raise_on_failure(err: int | None, trap: int | None) -> None:
    """Raise what wasmtime reported: an error or a trap (addresses; the caller owns them)."""
    if err:
        raise GuestTrap(str(wasmtime.WasmtimeError._from_ptr(ctypes.cast(err, POINTER(b.wasmtime_error_t)))))
    if trap:
        t = wasmtime.Trap._from_ptr(ctypes.cast(trap, POINTER(b.wasm_trap_t)))
        code = t.trap_code
        raise GuestTrap(t.message, interrupted=code == wasmtime.TrapCode.INTERRUPT)


HostFn = Callable[[int, int], None]
"""A host function: (the ``wasmtime_caller_t`` address, the address of its args-and-results,
16-byte ``wasmtime_val_raw`` each) → writes its results there; ``caller_memory_base`` finds
the caller's memory. Addresses, not ctypes objects: building those costs more than a call."""

_RAW_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_ulong, c_void_p, c_void_p, c_void_p, ctypes.c_ulong)


def define_unchecked(
    linker: wasmtime.Linker, module: str, name: str, ty: wasmtime.FuncType, fn: HostFn
) -> object:
    """Define ``module.name`` with an unchecked callback; keep the returned handle alive."""
    cb = unchecked_callback(module, name, fn)
    define_native(linker, module, name, ty, ctypes.cast(cb, c_void_p).value or 0, None)
    return cb


def define_native(
    linker: wasmtime.Linker, module: str, name: str, ty: wasmtime.FuncType, fn: int, env: int | None
) -> None:
    """Define ``module.name`` as the native unchecked callback at address ``fn``, which gets
    ``env`` (both must outlive the linker's instances)."""
    mod_b, name_b = module.encode(), name.encode()
    err = b._wasmtime_linker_define_func_unchecked(
        linker.ptr(), mod_b, len(mod_b), name_b, len(name_b), ty.ptr(),
        ctypes.cast(fn, b.wasmtime_func_unchecked_callback_t), env, _NO_FINALIZER,
    )
    if err:
        raise wasmtime.WasmtimeError._from_ptr(err)


def unchecked_callback(module: str, name: str, fn: HostFn) -> Any:
    """``fn`` as a native unchecked callback for ``module.name``; keep it alive while it may
    be called."""

    def trampoline(_env: int, caller: int, args: int, _n: int) -> int:
        try:
            fn(caller, args)
            return 0
        except BaseException as exc:  # noqa: BLE001 - a host bug must trap the guest, never crash
            msg = f"host function {module}.{name} failed: {exc!r}".encode()
            return ctypes.cast(_trap_new(msg, len(msg)), c_void_p).value or 0

    return _RAW_CALLBACK(trampoline)

