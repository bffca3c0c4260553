"""What shared state needs of the place it lasts: rows of (tenant, key) → JSON, each versioned.

A row's version grows by one on every write, so ``swap`` can write only if nobody wrote since a
``read`` (the atomic ``shared.update``), across processes too. ``changes`` hands back what other
processes wrote, so each process's copy in memory follows theirs (``store.SharedState``).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol


class Row(NamedTuple):
    tenant: str
    key: str
    value: bytes | None  # JSON; None: the key was deleted


class Backend(Protocol):
    def load(self, tenant: str) -> dict[str, bytes]:
        """Every key of ``tenant`` that holds a value → its JSON."""
        ...

    def write(self, rows: list[Row]) -> None:
        """Write ``rows`` in one transaction; each row's version grows by one."""
        ...

    def read(self, tenant: str, key: str) -> tuple[int, bytes | None]:
        """The key's (version, JSON) as stored now; (0, None) for a key never written."""
        ...

    def swap(self, tenant: str, key: str, version: int, value: bytes | None) -> bool:
        """Write ``value`` only if the key's version is still ``version``: whether it did."""
        ...

    def changes(self) -> list[Row]:
        """Rows written since the last call (by any process); [] when nothing changed."""
        ...

    def maintain(self) -> None:
        """Upkeep that may wait on the disk, run now and then off every request's path."""
        ...

    def close(self) -> None: ...
