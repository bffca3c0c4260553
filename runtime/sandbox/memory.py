"""Linear memories for guest instances: the snapshot image mapped copy-on-write, recycled after
an exact reset.

wasmtime asks this creator for every instance's memory. A new memory maps the engine image
privately, so it starts as a page-for-page copy of the snapshot. Mapping it afresh for every
serverless request cost about 60 µs a request here, almost all in the kernel: page faults (every
first touch of a 64 KiB block of the image, and a copy for every page written), then unmapping
it all again. So a memory whose store is dropped is reset and kept for the next instance, which
is what wasmtime's own pooling allocator does: the ``PAGEMAP_SCAN`` ioctl lists exactly the
pages this process holds privately in it (the ones written since the image was mapped, or
swapped out), those are copied back from the image (or zeroed past it), and every other page
is still the image's own. The next instance starts from memory equal to the snapshot byte for
byte, with no page fault on the pages earlier requests touched. Every store and instance is
still new; only the pages behind the memory are reused.

Pages past a small budget are handed back to the kernel rather than copied, so a script that
dirtied megabytes does not make every later reset copy megabytes; a memory that grew is shrunk
back the same way. One that cannot be scanned (Linux before 6.7) is unmapped instead.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import os
import threading
from ctypes import c_int, c_size_t, c_uint64, c_ulong, c_void_p
from pathlib import Path

import wasmtime
from wasmtime import _bindings as b

PAGE = 4096
PROT_NONE, PROT_READ, PROT_READ_WRITE = 0, 1, 3
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS, MAP_NORESERVE = 0x01, 0x02, 0x10, 0x20, 0x4000
MAP_FAILED = ctypes.c_void_p(-1).value
PAGEMAP_SCAN = 0xC0606610  # _IOWR('f', 16, struct pm_scan_arg)
PAGE_IS_FILE, PAGE_IS_PRESENT, PAGE_IS_SWAPPED, PAGE_IS_PFNZERO = 1 << 2, 1 << 3, 1 << 4, 1 << 5
MADV_DONTNEED = 4
KEEP_RESIDENT = 256 * 1024
"""Private bytes a reset copies back in place, keeping them mapped for the next instance; past
this, pages are handed back to the kernel instead (as wasmtime's ``*_keep_resident``)."""
SPARE_SLOTS = 16
"""Reset memories kept for reuse; more than the guest threads plus the event loop ever need at
once."""

_libc = ctypes.CDLL(None, use_errno=True)
_mmap = _libc.mmap
_mmap.restype = c_void_p
_mmap.argtypes = [c_void_p, c_size_t, c_int, c_int, c_int, ctypes.c_long]
_mprotect = _libc.mprotect
_mprotect.argtypes = [c_void_p, c_size_t, c_int]
_munmap = _libc.munmap
_munmap.argtypes = [c_void_p, c_size_t]
_madvise = _libc.madvise
_madvise.argtypes = [c_void_p, c_size_t, c_int]
_ioctl = _libc.ioctl
_ioctl.argtypes = [c_int, c_ulong, c_void_p]


_Finalizer = ctypes.CFUNCTYPE(None, c_void_p)


class _ScanArg(ctypes.Structure):
    """``struct pm_scan_arg`` (linux/fs.h)."""

    _fields_ = [
        (name, c_uint64)
        for name in (
            "size", "flags", "start", "end", "walk_end", "vec", "vec_len", "max_pages",
            "category_inverted", "category_mask", "category_anyof_mask", "return_mask",
        )
    ]


class _Region(ctypes.Structure):
    _fields_ = [("start", c_uint64), ("end", c_uint64), ("categories", c_uint64)]


class _Slot:
    """One reserved address range holding a linear memory."""

    __slots__ = ("base", "capacity", "minimum", "reserved", "size", "view")

    def __init__(self, base: int, minimum: int, capacity: int, reserved: int) -> None:
        self.base, self.minimum, self.size = base, minimum, minimum
        self.capacity = capacity  # how far it may grow in place; past it, the guard
        self.reserved = reserved  # the whole mapping, guard included
        # A reset copies pages through this: a slice assignment costs half a ctypes.memmove.
        # Only ever written where the scan found pages, so never past ``size``.
        self.view = _view(base, capacity)


class ImageMemories:
    """A wasmtime memory creator: every memory starts as ``image``.

    One per image file and process (``of``), shared by every engine that uses it and never
    freed: wasmtime calls back into it until the last store of the last engine is dropped.
    """

    @classmethod
    @functools.cache
    def of(cls, image: Path) -> ImageMemories:
        return cls(Path(image).resolve())

    def __init__(self, image: Path) -> None:
        self._image_fd = os.open(image, os.O_RDONLY | os.O_CLOEXEC)
        self.image_len = os.fstat(self._image_fd).st_size
        # The pristine copy a reset copies from: the file's pages, shared with every mapping.
        self.image_addr = _mmap(None, self.image_len, PROT_READ, MAP_SHARED, self._image_fd, 0)
        if self.image_addr in (None, MAP_FAILED):
            raise OSError(ctypes.get_errno(), f"cannot map the memory image {image}")
        self._image_view = _view(self.image_addr, self.image_len)
        self._live: dict[int, _Slot] = {}
        self._spare: list[_Slot] = []
        self._keys = itertools.count(1)
        self._lock = threading.Lock()
        self._made = threading.local()
        self._scanner = _Scanner.open()
        # ctypes callbacks must outlive the engine: they are kept on this object.
        self._callbacks = (
            b.wasmtime_new_memory_callback_t(self._new_memory),
            b.wasmtime_memory_get_callback_t(self._get_memory),
            b.wasmtime_memory_grow_callback_t(self._grow_memory),
            _Finalizer(self._release),
        )
        self._creator = b.wasmtime_memory_creator(None, self._callbacks[0], _Finalizer())

    @property
    def recycles(self) -> bool:
        """Whether dropped memories are reset and reused (the kernel can list written pages)."""
        return self._scanner is not None

    def install(self, config: wasmtime.Config) -> None:
        """Make ``config``'s engine take every linear memory from here."""
        b._wasmtime_config_host_memory_creator_set(config.ptr(), ctypes.byref(self._creator))

    def last_made(self) -> int:
        """Address of the memory this thread's latest instantiation got; it never moves, so an
        instance can take it from here instead of asking wasmtime (two calls, ~3 µs)."""
        return int(self._made.base)

    def spare(self) -> list[tuple[int, int]]:
        """(address, size) of the memories waiting for reuse; for tests that check the reset."""
        with self._lock:
            return [(slot.base, slot.size) for slot in self._spare]

    # -- wasmtime's callbacks ---------------------------------------------------------------
    # They run on whichever thread instantiates or drops a store; an exception must not cross
    # back into wasmtime, so the creator returns an error and the others cannot fail.

    def _new_memory(
        self, _env: int, _ty: object, minimum: int, _maximum: int, reserved: int, guard: int,
        ret: ctypes._Pointer,  # type: ignore[type-arg]
    ) -> int:
        try:
            capacity = max(reserved, minimum)
            slot = self._take(minimum, capacity, capacity + guard)
        except OSError as exc:
            msg = f"cannot map a linear memory: {exc}".encode()
            return ctypes.cast(b._wasmtime_error_new(msg), c_void_p).value or 0
        key = next(self._keys)
        self._live[key] = slot
        self._made.base = slot.base
        out = ret[0]
        out.env = key
        out.get_memory, out.grow_memory, out.finalizer = self._callbacks[1:]
        return 0

    def _get_memory(self, env: int, size: ctypes._Pointer, capacity: ctypes._Pointer) -> int:  # type: ignore[type-arg]
        slot = self._live[env]
        size[0] = slot.size
        capacity[0] = slot.capacity
        return slot.base

    def _grow_memory(self, env: int, new_size: int) -> int:
        slot = self._live[env]
        if new_size > slot.capacity:
            msg = f"a linear memory cannot grow past {slot.capacity} bytes".encode()
            return ctypes.cast(b._wasmtime_error_new(msg), c_void_p).value or 0
        if new_size > slot.size:
            if _mprotect(slot.base + slot.size, new_size - slot.size, PROT_READ_WRITE):
                msg = f"cannot grow a linear memory: {os.strerror(ctypes.get_errno())}".encode()
                return ctypes.cast(b._wasmtime_error_new(msg), c_void_p).value or 0
            slot.size = new_size
        return 0

    def _release(self, env: int) -> None:
        slot = self._live.pop(env)
        if self._scanner is None or not self._reset(slot):
            _munmap(slot.base, slot.reserved)
            return
        with self._lock:
            if len(self._spare) < SPARE_SLOTS:
                self._spare.append(slot)
                return
        _munmap(slot.base, slot.reserved)

    # -- slots ------------------------------------------------------------------------------

    def _take(self, minimum: int, capacity: int, reserved: int) -> _Slot:
        with self._lock:
            for i, slot in enumerate(self._spare):
                if slot.minimum == minimum and slot.capacity >= capacity and slot.reserved >= reserved:
                    return self._spare.pop(i)
        return self._map(minimum, capacity, reserved)

    def _map(self, minimum: int, capacity: int, reserved: int) -> _Slot:
        """Reserve the whole range inaccessible, then map the image and the zeroed rest."""
        n = self.image_len
        if n > minimum:
            raise OSError(f"the memory image ({n} B) exceeds the memory ({minimum} B)")
        base = _mmap(None, reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        if base in (None, MAP_FAILED):
            raise OSError(ctypes.get_errno(), "mmap of the reservation failed")
        ok = _mmap(base, n, PROT_READ_WRITE, MAP_PRIVATE | MAP_FIXED, self._image_fd, 0) == base
        if ok and minimum > n:
            ok = _mprotect(base + n, minimum - n, PROT_READ_WRITE) == 0
        if not ok:
            errno = ctypes.get_errno()
            _munmap(base, reserved)
            raise OSError(errno, "mapping the memory image failed")
        return _Slot(base, minimum, capacity, reserved)

    def _reset(self, slot: _Slot) -> bool:
        """Put back what differs from the image; False if the kernel would not say what."""
        assert self._scanner is not None
        base = slot.base
        if slot.size > slot.minimum:  # shrink back: drop the grown pages, make them inaccessible
            grown = slot.size - slot.minimum
            if _madvise(base + slot.minimum, grown, MADV_DONTNEED) or _mprotect(
                base + slot.minimum, grown, PROT_NONE
            ):
                return False
            slot.size = slot.minimum
        regions = self._scanner.private_pages(base, base + slot.size)
        if regions is None:
            return False
        image, view, n = self._image_view, slot.view, self.image_len
        budget = KEEP_RESIDENT
        for i in range(0, len(regions), 2):
            lo, hi = regions[i] - base, regions[i + 1] - base
            budget -= hi - lo
            if budget < 0:  # give the pages back: they refault as the image (or zeros)
                if _madvise(base + lo, hi - lo, MADV_DONTNEED):
                    return False
            elif hi <= n:
                view[lo:hi] = image[lo:hi]
            else:  # past the image the memory starts zeroed
                if lo < n:
                    view[lo:n] = image[lo:n]
                    lo = n
                ctypes.memset(base + lo, 0, hi - lo)
        return True


def _view(address: int, size: int) -> memoryview:
    """Bytes at ``address`` as a writable memoryview (valid while the mapping lives)."""
    return memoryview((ctypes.c_char * size).from_address(address)).cast("B")


class _Scanner:
    """``PAGEMAP_SCAN`` over this process's own page tables."""

    VEC = 64

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._vec = (_Region * self.VEC)()
        # Pages this process holds privately: present or swapped, and neither a page of the
        # image file nor the shared zero page.
        self._arg = _ScanArg(
            size=ctypes.sizeof(_ScanArg),
            vec=ctypes.addressof(self._vec),
            vec_len=self.VEC,
            category_inverted=PAGE_IS_FILE | PAGE_IS_PFNZERO,
            category_mask=PAGE_IS_FILE | PAGE_IS_PFNZERO,
            category_anyof_mask=PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            return_mask=PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
        )
        self._argp = ctypes.byref(self._arg)
        self._fields = memoryview(self._vec).cast("B").cast("Q")
        self._lock = threading.Lock()

    @classmethod
    def open(cls) -> _Scanner | None:
        """A scanner, or None where the kernel has no ``PAGEMAP_SCAN``."""
        try:
            fd = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        scanner = cls(fd)
        probe = ctypes.create_string_buffer(PAGE)
        addr = ctypes.addressof(probe) // PAGE * PAGE
        if scanner.private_pages(addr, addr + PAGE) is None:
            os.close(fd)
            return None
        return scanner

    def private_pages(self, start: int, end: int) -> list[int] | None:
        """Private pages between ``start`` and ``end``: a flat list of range starts and ends."""
        out: list[int] = []
        with self._lock:
            arg, fields = self._arg, self._fields
            while start < end:
                arg.start, arg.end, arg.walk_end = start, end, 0
                n = _ioctl(self._fd, PAGEMAP_SCAN, self._argp)
                if n < 0:
                    return None
                # each region is (start, end, categories): keep the first two of every three
                flat = fields[: 3 * n].tolist()
                del flat[2::3]
                out += flat
                if n < self.VEC or arg.walk_end >= end:
                    break
                start = arg.walk_end
        return out
