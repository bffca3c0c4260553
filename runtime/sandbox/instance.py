"""One store + instance of the guest, and the envelope crossing into it.

A crossing writes the input envelope into guest memory, makes one unchecked call, and reads the
output envelope back: three copies and one ~1 µs call, whatever the request looks like.
"""

from __future__ import annotations

import ctypes

from runtime.sandbox import _capi
from runtime.sandbox.engine import GuestEngine


class _IOBlock(ctypes.Structure):
    """The guest's io block (``wx_io``), read and written in place."""

    _fields_ = [
        (name, ctypes.c_uint32) for name in ("in_ptr", "in_cap", "out_ptr", "out_json", "out_blob")
    ]


OOM_MARK = 0xFFFFFFFF
"""``out_json`` value the guest leaves before trapping on an allocation past its cap."""

STORE_SLACK = 16 * 1024 * 1024
"""Headroom above the script's cap, so the guest's own cap (not wasmtime's) is reached first."""


class GuestInstance:
    """The guest running in its own store; not thread-safe: one crossing at a time."""

    __slots__ = (
        "_args",
        "_base",
        "_ctx",
        "_funcs",
        "_instance",
        "_io",
        "_store",
        "engine",
        "memory_limit",
    )

    def __init__(self, engine: GuestEngine, memory_limit: int) -> None:
        self.engine = engine
        self.memory_limit = memory_limit
        self._store, self._ctx = _capi.new_store(engine.engine, memory_limit + STORE_SLACK)
        self._instance = _capi.instantiate(engine.pre, self._ctx)
        self._base = engine.memories.last_made()  # fixed: the engine forbids moving
        self._funcs: dict[bytes, _capi.Extern] = {}
        self._args = (_capi.ValRaw * 2)()
        if engine.io_addr is None:
            self._call(b"wx_io", 0, None)
            engine.io_addr = self._args[0].i32 & 0xFFFFFFFF
        self._io = _IOBlock.from_address(self._base + engine.io_addr)

    def cross(
        self, export: bytes, header: bytes, blob: bytes, budget_ms: float | None
    ) -> tuple[bytes, bytes]:
        """Send one envelope to ``export`` and return the guest's (JSON header, blob)."""
        base, io = self._base, self._io
        hlen, blen = len(header), len(blob)
        if hlen + blen > io.in_cap:
            self._call(b"wx_reserve", 1, None, hlen + blen)
        in_ptr = base + io.in_ptr
        _capi.memmove(in_ptr, header, hlen)
        if blen:
            _capi.memmove(in_ptr + hlen, blob, blen)
        try:
            self._call(export, 2, budget_ms, hlen, blen)
        except _capi.GuestTrap as trap:
            if io.out_json == OOM_MARK:
                raise MemoryError(
                    f"script exceeded its memory limit of {self.memory_limit // (1024 * 1024)} MiB"
                ) from trap
            raise
        out_ptr, out_json, out_blob = io.out_ptr, io.out_json, io.out_blob
        rc = self._args[0].i32
        head = _capi.string_at(base + out_ptr, out_json)
        if rc < 0:
            raise _capi.GuestTrap(
                f"guest refused {export.decode()}: {head.decode(errors='replace')}"
            )
        return head, (_capi.string_at(base + out_ptr + out_json, out_blob) if out_blob else b"")

    @property
    def closed(self) -> bool:
        return self._store is None

    def close(self) -> None:
        if self._store is not None:
            _capi.delete_store(self._store)
            self._store = None

    def __del__(self) -> None:
        self.close()

    def _call(self, export: bytes, nargs: int, budget_ms: float | None, *argv: int) -> None:
        func = self._funcs.get(export)
        if func is None:
            func = self._funcs[export] = _capi.export(self._ctx, self._instance, export)
        args = self._args
        for i, v in enumerate(argv):
            args[i].i32 = v
        _capi.set_epoch_deadline(self._ctx, self.engine.deadline_ticks(budget_ms))
        _capi.call(self._ctx, func.of.func, args, max(nargs, 1))
