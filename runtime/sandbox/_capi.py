"""The few raw wasmtime C API calls on the request path, bound once.

wasmtime-py's ``Func.__call__`` rebuilds type objects on every crossing (~10 µs); the unchecked C
API does the same crossing in about 1 µs. Everything that is not on the request path (engine,
module, linker set-up) stays on wasmtime-py's public API; this module only covers store
creation, instantiation, export lookup, calls, memory access and unchecked host functions.
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
FuncRef = b.wasmtime_func_t
MemoryRef = b.wasmtime_memory_t
InstanceRef = b.wasmtime_instance_t
TrapPtr = POINTER(b.wasm_trap_t)

EXTERN_FUNC = 0
EXTERN_MEMORY = 3

_store_new = b._wasmtime_store_new
_store_context = b._wasmtime_store_context
_store_delete = b._wasmtime_store_delete
_store_limiter = b._wasmtime_store_limiter
_set_wasi = b._wasmtime_context_set_wasi
_wasi_config_new = b._wasi_config_new
_set_epoch_deadline = b._wasmtime_context_set_epoch_deadline
_pre_instantiate = b._wasmtime_instance_pre_instantiate
_export_get = b._wasmtime_instance_export_get
_call = b._wasmtime_func_call_unchecked
_memory_data = b._wasmtime_memory_data
_caller_export_get = b._wasmtime_caller_export_get
_caller_context = b._wasmtime_caller_context
_trap_new = b._wasmtime_trap_new
_NO_FINALIZER = ctypes.cast(0, ctypes.CFUNCTYPE(None, c_void_p))

string_at = ctypes.string_at
memmove = ctypes.memmove


class GuestTrap(Exception):
    """The guest trapped (or wasmtime refused the call): its store must be dropped."""

    def __init__(self, message: str, *, interrupted: bool = False) -> None:
        super().__init__(message)
        self.interrupted = interrupted


def new_store(engine: wasmtime.Engine, memory_limit: int) -> tuple[object, object]:
    """A store with an empty WASI context and a linear-memory cap: (store, context)."""
    store = _store_new(engine.ptr(), None, _NO_FINALIZER)
    ctx = _store_context(store)
    _store_limiter(store, memory_limit, -1, -1, -1, -1)
    err = _set_wasi(ctx, _wasi_config_new())
    if err:
        _store_delete(store)
        raise wasmtime.WasmtimeError._from_ptr(err)
    return store, ctx


delete_store = _store_delete
set_epoch_deadline = _set_epoch_deadline


def instantiate(pre: wasmtime.InstancePre, ctx: object) -> InstanceRef:
    instance = InstanceRef()
    trap = TrapPtr()
    err = _pre_instantiate(pre.ptr(), ctx, byref(instance), byref(trap))
    _raise_on_failure(err, trap)
    return instance


def export(ctx: object, instance: InstanceRef, name: bytes) -> Extern:
    item = Extern()
    if not _export_get(ctx, byref(instance), name, len(name), byref(item)):
        raise LookupError(f"guest module has no export {name.decode()!r}")
    return item


def memory_base(ctx: object, memory: MemoryRef) -> int:
    """Address of linear memory in this process (stable while the store lives: no moving)."""
    return ctypes.cast(_memory_data(ctx, byref(memory)), c_void_p).value or 0


def call(ctx: object, func: FuncRef, args: ctypes.Array[ValRaw], nargs: int) -> None:
    """Call ``func`` with ``args`` (results are written back into ``args``)."""
    trap = TrapPtr()
    err = _call(ctx, byref(func), args, nargs, byref(trap))
    if err or trap:
        _raise_on_failure(err, trap)


def _raise_on_failure(err: Any, trap: Any) -> None:
    if err:
        raise GuestTrap(str(wasmtime.WasmtimeError._from_ptr(err)))
    if trap:
        t = wasmtime.Trap._from_ptr(trap)
        code = t.trap_code
        raise GuestTrap(t.message, interrupted=code == wasmtime.TrapCode.INTERRUPT)


HostFn = Callable[[int, ctypes.Array[ValRaw]], None]
"""A host function: (linear memory base, args-and-results) → writes results into the args."""

_CALLBACK = b.wasmtime_func_unchecked_callback_t


def define_unchecked(
    linker: wasmtime.Linker, module: str, name: str, ty: wasmtime.FuncType, fn: HostFn
) -> object:
    """Define ``module.name`` with an unchecked callback; keep the returned handle alive."""
    mod_b, name_b = module.encode(), name.encode()

    def trampoline(_env: int, caller: object, args: ctypes.Array[ValRaw], _n: int) -> int:
        try:
            item = Extern()
            if not _caller_export_get(caller, b"memory", 6, byref(item)):
                raise RuntimeError("guest exports no memory")
            base = memory_base(_caller_context(caller), item.of.memory)
            fn(base, args)
            return 0
        except BaseException as exc:  # noqa: BLE001 - a host bug must trap the guest, never crash
            msg = f"host function {module}.{name} failed: {exc!r}".encode()
            return ctypes.cast(_trap_new(msg, len(msg)), c_void_p).value or 0

    cb = _CALLBACK(trampoline)
    err = b._wasmtime_linker_define_func_unchecked(
        linker.ptr(), mod_b, len(mod_b), name_b, len(name_b), ty.ptr(), cb, None, _NO_FINALIZER
    )
    if err:
        raise wasmtime.WasmtimeError._from_ptr(err)
    return cb

