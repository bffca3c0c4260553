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

The creator is native code (``memory.c``, built with ``instance.c`` by ``native.py``):
wasmtime calls it on every instantiation and every store drop, and as Python callbacks those
calls cost more than the reset itself (about 17 µs of a 64 µs serverless request, against 6).
"""

from __future__ import annotations

import ctypes
import functools
import os
from ctypes import POINTER, byref, c_int, c_long, c_size_t, c_uint64, c_void_p
from pathlib import Path

import wasmtime
from wasmtime import _bindings as b

from runtime.sandbox import native

PAGE = 4096
KEEP_RESIDENT = 256 * 1024
"""Private bytes a reset copies back in place, keeping them mapped for the next instance; past
this, pages are handed back to the kernel instead (as wasmtime's ``*_keep_resident``)."""
SPARE_SLOTS = 16
"""Reset memories kept for reuse; more than the guest threads plus the event loop ever need at
once."""
_SIGNATURES: list[native.Signature] = [
    ("wxm_open", c_void_p, [c_int, c_size_t, c_int, c_void_p]),
    ("wxm_creator", None, [c_void_p, POINTER(b.wasmtime_memory_creator)]),
    ("wxm_image", c_void_p, [c_void_p, POINTER(c_size_t)]),
    ("wxm_recycling", c_int, [c_void_p, c_int]),
    ("wxm_spare", c_int, [c_void_p, POINTER(c_uint64), c_int]),
    ("wxm_private_pages", c_long, [c_void_p, c_uint64, c_uint64, POINTER(c_uint64), c_long]),
    ("wxm_derive", c_void_p, [c_void_p, c_void_p, c_size_t, POINTER(c_size_t)]),
    ("wxm_drop", None, [c_void_p]),
]


class ImageMemories:
    """A wasmtime memory creator: every memory starts as ``image``.

    One per image file and process (``of``), shared by every engine that uses it and never
    freed: wasmtime calls into it until the last store of the last engine is dropped.
    """

    @classmethod
    @functools.cache
    def of(cls, image: Path, cache_dir: Path) -> ImageMemories:
        return cls(Path(image).resolve(), Path(cache_dir))

    def __init__(self, image: Path, cache_dir: Path) -> None:
        self._lib = lib = native.library(cache_dir)
        native.bind(lib, _SIGNATURES)
        fd = os.open(image, os.O_RDONLY | os.O_CLOEXEC)  # open for good: mappings are made from it
        error_new = ctypes.cast(b._wasmtime_error_new, c_void_p).value
        self._pool = lib.wxm_open(fd, KEEP_RESIDENT, SPARE_SLOTS, error_new)
        if not self._pool:
            raise OSError(ctypes.get_errno(), f"cannot map the memory image {image}")
        size = c_size_t()
        self.image_addr: int = lib.wxm_image(self._pool, byref(size))
        self.image_len = size.value
        self._creator = b.wasmtime_memory_creator()
        lib.wxm_creator(self._pool, byref(self._creator))

    @property
    def recycles(self) -> bool:
        """Whether dropped memories are reset and reused (the kernel can list written pages)."""
        return bool(self._lib.wxm_recycling(self._pool, -1))

    @recycles.setter
    def recycles(self, on: bool) -> None:
        """Turn reuse off (memories are then unmapped on drop), or back on where it can be."""
        self._lib.wxm_recycling(self._pool, int(on))

    def derive(self, memory: int, size: int) -> DerivedImage | None:
        """An image for new memories: this one with the pages of ``memory[0, size)`` that
        differ from it, kept in a file of their own; None if it cannot be made."""
        diff = c_size_t()
        handle = self._lib.wxm_derive(self._pool, memory, size, byref(diff))
        return DerivedImage(self._lib, handle, diff.value) if handle else None

    def install(self, config: wasmtime.Config) -> None:
        """Make ``config``'s engine take every linear memory from here."""
        b._wasmtime_config_host_memory_creator_set(config.ptr(), byref(self._creator))

    def spare(self, image: DerivedImage | None = None) -> list[tuple[int, int]]:
        """(address, size) of the memories waiting for reuse, this image's or ``image``'s; for
        tests that check the reset."""
        out = (c_uint64 * (2 * SPARE_SLOTS))()
        n = self._lib.wxm_spare(image.handle if image else self._pool, out, SPARE_SLOTS)
        return [(out[2 * i], out[2 * i + 1]) for i in range(n)]

    def private_pages(self, start: int, end: int, limit: int = 1024) -> list[int] | None:
        """Pages between ``start`` and ``end`` this process holds privately, as a flat list of
        range starts and ends (what a reset copies back); None where the kernel cannot say."""
        out = (c_uint64 * (2 * limit))()
        n = self._lib.wxm_private_pages(self._pool, start, end, out, limit)
        return None if n < 0 else list(out[: 2 * n])


class DerivedImage:
    """A derived image (``ImageMemories.derive``), for instances made with it
    (``GuestInstance(..., image=)``); freed once this and every memory made from it are gone."""

    __slots__ = ("_lib", "handle", "stored")

    def __init__(self, lib: ctypes.CDLL, handle: int, stored: int) -> None:
        self._lib, self.handle = lib, handle
        self.stored = stored
        """What its own pages take, bytes."""

    def __del__(self) -> None:
        self._lib.wxm_drop(self.handle)
