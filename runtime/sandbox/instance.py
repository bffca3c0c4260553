"""One store + instance of the guest, and the envelope crossing into it.

A crossing writes the input envelope into guest memory, makes one unchecked call, and reads the
output envelope back. All of it but the two copies out is one call into ``instance.c``: the
store and instance are made there too, at the first crossing, so a serverless request's fresh
instance costs one ctypes call where it took a dozen (and as many wrapper objects).
"""

from __future__ import annotations

import ctypes
from ctypes import (
    POINTER,
    c_char_p,
    c_int,
    c_int32,
    c_int64,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import wasmtime

from runtime.host import Caller, running
from runtime.sandbox import _capi, native

if TYPE_CHECKING:
    from runtime.sandbox.engine import GuestEngine
    from runtime.sandbox.memory import DerivedImage

STORE_SLACK = 16 * 1024 * 1024
"""Headroom above the script's cap, so the guest's own cap (not wasmtime's) is reached first."""




class CrossingHook(Protocol):
    """What a host unit keeps in step with an instance's memory between crossings (shared
    state's area): called before each crossing, and after it, a failed one included."""

    def before(self) -> None: ...

    def after(self) -> None: ...


class _Crossing(ctypes.Structure):
    """What ``wxi_cross`` hands back (``crossing_t`` in instance.c)."""

    _fields_ = [
        ("head", c_void_p),
        ("head_len", c_uint32),
        ("blob_len", c_uint32),
        ("rc", c_int32),
        ("out_of_memory", c_uint32),
        ("error", c_void_p),
        ("trap", c_void_p),
        ("memory_len", c_size_t),
    ]


_SIGNATURES: list[native.Signature] = [
    ("wxi_open", c_void_p, [c_char_p, c_void_p, c_void_p, c_size_t, c_size_t, c_size_t, c_size_t]),
    ("wxi_new", c_void_p, [c_void_p, c_int64, c_void_p]),
    ("wxi_memory", c_void_p, [c_void_p, POINTER(c_size_t)]),
    ("wxi_free", None, [c_void_p]),
    ("wxi_start", c_int, [c_void_p, POINTER(_Crossing)]),
    ("wxi_cross", c_int, [c_void_p, c_char_p, c_size_t, c_char_p, c_uint32, c_char_p, c_uint32,
                          c_uint64, POINTER(_Crossing)]),
    ("wxi_answer_from", None, [c_void_p, c_void_p, c_uint32]),
    ("wxa_new", c_void_p, []),
    ("wxa_versions", c_void_p, [c_void_p]),
    ("wxa_put", None, [c_void_p, c_char_p, c_uint32, c_char_p, c_uint32, c_uint32, c_uint64]),
]

ANSWER_SLOTS = 1024
"""``answers.c`` ``SLOTS``: a top-level key's slot is its hash reduced to this."""


class NativeEngine:
    """The engine as ``instance.c`` sees it: where instances are made and crossed into."""

    def __init__(self, cache_dir: Path, engine: wasmtime.Engine, pre: wasmtime.InstancePre) -> None:
        lib = native.library(cache_dir)
        native.bind(lib, _SIGNATURES)
        b = _capi.b
        self.handle: int = lib.wxi_open(
            b.dll._name.encode(),
            ctypes.cast(engine.ptr(), c_void_p),
            ctypes.cast(pre.ptr(), c_void_p),
            ctypes.sizeof(b.wasmtime_instance_t),
            ctypes.sizeof(b.wasmtime_extern),
            b.wasmtime_extern.of.offset,
            ctypes.sizeof(b.wasmtime_val_raw),
        )
        if not self.handle:
            raise RuntimeError(
                "instance.c does not match this wasmtime build (a function or a handle layout "
                "differs); reinstall the pinned wasmtime package"
            )
        self._keep = (engine, pre)  # both must outlive every instance made here
        self.lib = lib
        self.new, self.free, self.start, self.cross = lib.wxi_new, lib.wxi_free, lib.wxi_start, lib.wxi_cross
        self.memory = lib.wxi_memory


class Answers:
    """Answers to one tenant's ``shared.get`` calls, kept natively (``answers.c``) so that
    ``instance.c`` gives them without entering Python. ``versions`` holds a change counter per
    slot of top-level keys, which the host bumps after every change of a key (``put`` keeps an
    answer only while its slot's counter is the one read before the value was)."""

    __slots__ = ("_handle", "_put", "lib", "versions")

    def __init__(self, native: NativeEngine) -> None:
        lib = native.lib
        handle = lib.wxa_new()
        if not handle:
            raise MemoryError("no memory for a tenant's shared state answers")
        self.lib, self._handle, self._put = lib, handle, lib.wxa_put
        self.versions = _capi.memory_view(lib.wxa_versions(handle), ANSWER_SLOTS * 8).cast("Q")

    def put(self, data: bytes, answer: bytes, slot: int, version: int) -> None:
        """Keep ``answer`` for the call input ``data``, read while ``slot`` was at ``version``."""
        self._put(self._handle, data, len(data), answer, len(answer), slot, version)


class GuestInstance:
    """The guest running in its own store; not thread-safe: one crossing at a time."""

    __slots__ = (
        "_cross", "_handle", "_native", "_out", "caller", "engine", "hook", "image",
        "memory_limit", "memory_size", "memory_view",
    )

    def __init__(
        self, engine: GuestEngine, memory_limit: int, image: DerivedImage | None = None,
        caller: Caller | None = None,
    ) -> None:
        """``image``: what memory starts as, if not the engine's snapshot (kept alive here);
        ``caller``: who its bound host calls act for (None: they are refused)."""
        self.engine = engine
        self.caller = caller
        self.memory_view: memoryview | None = None
        """Linear memory, for host calls, once one has looked for it (None: not yet); where it
        is stays fixed for the store's life (no moving memories, ``ENGINE_CONFIG``)."""
        self.hook: CrossingHook | None = None
        """Set by a host call that links the guest's memory to the host (shared state)."""
        self.memory_limit = memory_limit
        self.memory_size = 0
        """Linear memory's size after the last crossing (memory only grows: its high-water
        mark), kept here so that reading it never calls into the store, which another thread
        may be crossing into."""
        self.image = image
        self._native = engine.native
        self._cross = self._native.cross
        self._handle: int | None = self._native.new(
            self._native.handle, memory_limit + STORE_SLACK, image.handle if image else None
        )
        if not self._handle:
            raise MemoryError("no memory for a guest instance handle")
        self._out = _Crossing()

    def start(self) -> None:
        """Make the store and instance now instead of at the first crossing."""
        if self._native.start(self._handle, self._out):
            self._fail(b"instantiate")

    def memory(self) -> tuple[int, int]:
        """Linear memory's (address, size) in this process; (0, 0) before the first crossing."""
        size = c_size_t()
        return self._native.memory(self._handle, ctypes.byref(size)) or 0, size.value

    def cross(
        self, export: bytes, header: bytes, blob: bytes, budget_ms: float | None
    ) -> tuple[bytes, bytes]:
        """Send one envelope to ``export`` and return the guest's (JSON header, blob)."""
        out = self._out
        outer, running.instance = running.instance, self  # a host call may cross elsewhere
        paused = outer.hook if outer is not None else None
        if paused is not None:  # the outer crossing as if it ended here and began again after
            paused.after()
        hook = self.hook
        if hook is not None:
            hook.before()
        try:
            failed = self._cross(self._handle, export, len(export), header, len(header), blob,
                                 len(blob), self.engine.deadline_ticks(budget_ms), out)
        finally:
            running.instance = outer
            hook = self.hook  # a call in the crossing may have set it
            if hook is not None:
                hook.after()
            if paused is not None:
                paused.before()
        if failed:
            self._fail(export)
        head = ctypes.string_at(out.head, out.head_len)
        if out.rc < 0:
            raise _capi.GuestTrap(
                f"guest refused {export.decode()}: {head.decode(errors='replace')}"
            )
        self.memory_size = out.memory_len
        n = out.blob_len
        return head, (ctypes.string_at(out.head + out.head_len, n) if n else b"")

    def _fail(self, export: bytes) -> None:
        """Raise what stopped a crossing: the store must be dropped."""
        out = self._out
        try:
            _capi.raise_on_failure(out.error, out.trap)
        except _capi.GuestTrap as trap:
            if out.out_of_memory:
                raise MemoryError(
                    f"script exceeded its memory limit of {self.memory_limit // (1024 * 1024)} MiB"
                ) from trap
            raise
        raise _capi.GuestTrap(f"the crossing into {export.decode()} failed")

    def answer_from(self, answers: Answers, area: int) -> bool:
        """Let ``instance.c`` answer this instance's ``shared.get`` calls from ``answers``
        (``area``: its shared area's address) if they are this engine's own; whether it will."""
        if answers.lib is not self._native.lib or self._handle is None:
            return False
        self._native.lib.wxi_answer_from(self._handle, answers._handle, area)
        return True

    def crossed(self) -> None:
        """The last crossing will not be run again: let the host keep what it changed (the
        hook's ``after``, which a rerunnable crossing leaves for this)."""
        if self.hook is not None:
            self.hook.after()

    @property
    def closed(self) -> bool:
        return self._handle is None

    def close(self) -> None:
        self.memory_view = self.hook = None
        if self._handle is not None:
            self._native.free(self._handle)
            self._handle = None

    def __del__(self) -> None:
        self.close()

