"""Serverless images: which scripts' fresh instances start from the memory their top level left.

A serverless script whose top level is pure (it read no clock, randomness or host, and logged
nothing: the guest says so, ABI.md) has it run once, in its first request; the memory that left
becomes the script's image (``memory.DerivedImage``), and its later instances start from it: the
same state, without the load. This cache remembers, per script version, its image or that it
has none, within a count and a byte budget (least recently used first). Guest threads add
images while the event loop reads, hence the lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from runtime.sandbox.memory import DerivedImage

if TYPE_CHECKING:
    from runtime.compiler import Artefact


class ImageCache:
    """Scripts' images (or None: a top level that is not pure), keyed by ``Artefact.key``.

    ``count`` 0 turns images off: every script then loads in each fresh instance.
    """

    def __init__(self, count: int, budget_bytes: int) -> None:
        self.count = count
        self.budget_bytes = budget_bytes
        self._images: OrderedDict[str, tuple[Artefact, DerivedImage | None]] = OrderedDict()
        self._making: set[str] = set()  # scripts whose image one request is making now
        self._lock = threading.Lock()

    def lookup(self, artefact: Artefact) -> tuple[DerivedImage | None, bool]:
        """The image a fresh instance of ``artefact`` starts from (None: the snapshot), and
        whether the script was tried for one (it has one, its top level is not pure, or images
        are off). A script not tried yet gets False once: that request makes the image (then
        ``keep``s it), and the ones that come meanwhile load the script themselves rather than
        each make an image too."""
        key = artefact.key
        with self._lock:
            entry = self._images.get(key)
            if entry is not None and entry[0] is artefact:
                self._images.move_to_end(key)
                return entry[1], True
            if key in self._making or not self.count:
                return None, True
            self._making.add(key)
        return None, False

    def keep(self, artefact: Artefact, image: DerivedImage | None) -> None:
        """Remember ``artefact``'s image (or that it has none), within the bounds: the least
        recently used go first; one bigger than the whole budget is not kept."""
        if image is not None and image.stored > self.budget_bytes:
            image = None
        with self._lock:
            self._making.discard(artefact.key)
            images = self._images
            images[artefact.key] = (artefact, image)
            stored = sum(entry[1].stored for entry in images.values() if entry[1] is not None)
            while len(images) > self.count or stored > self.budget_bytes:
                _, (_, dropped) = images.popitem(last=False)
                stored -= dropped.stored if dropped is not None else 0

    def figures(self) -> tuple[int, int]:
        """Images kept, and the bytes they take."""
        with self._lock:
            kept = [entry[1] for entry in self._images.values() if entry[1] is not None]
            return len(kept), sum(image.stored for image in kept)

    def abandon(self, artefact: Artefact) -> None:
        """The request making ``artefact``'s image went away first: the next one makes it."""
        with self._lock:
            self._making.discard(artefact.key)

    def evict(self, key: str) -> None:
        """Forget a script's image (the script changed or was deleted)."""
        with self._lock:
            self._images.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._images.clear()
