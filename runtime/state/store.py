"""The per-process map of every tenant's shared state, over a ``Backend`` where it lasts.

Reads and writes touch memory only (a key costs a dict lookup and its JSON, never the whole
state); what changed is written to the backend by a background thread every ``sync_ms`` (write
behind), which then takes in what other processes wrote. So, per tenant:

- within one process every script sees every write at once, whichever instance made it;
- two writes to one key: the last one wins, per top-level key;
- with ``--workers N``, another process sees a write within about two ``sync_ms``;
- ``swap`` (what ``shared.update`` is built on) goes to the backend at once and writes only
  if the key is unchanged since its ``take``: atomic across threads and processes;
- a server that stops cleanly writes everything first; one that crashes loses at most its
  last ``sync_ms`` of plain writes (never an ``update``);
- every change, whoever makes it, moves the tenant's ``gen`` on: what a guest read stays
  right while it stays the same (``runtime.host.shared.Link``).

Values are JSON. A tenant's state is capped in bytes (its keys' JSON, as measured when written).
"""

from __future__ import annotations

import atexit
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from runtime.state.backend import Backend, Row
from runtime.state.sqlite import SQLiteBackend

log = logging.getLogger("wexec.state")

MAINTAIN_EVERY = 20
"""Syncs between two runs of the backend's upkeep (``Backend.maintain``)."""

MISSING: Any = object()
"""What ``get`` answers for a path that holds nothing."""


class StateError(ValueError):
    """A read or write refused: its text says why and what to change."""


class StateFull(StateError):
    """A write that would take a tenant's state past its cap."""


@dataclass(slots=True)
class TenantState:
    values: dict[str, Any]
    sizes: dict[str, int]  # per top-level key: its JSON and its name
    bytes: int = 0
    dirty: set[str] = field(default_factory=set)  # keys written since the last sync
    gen: int = 0  # grows with every change: what a guest's cache of the state is checked by
    versions: Any = None  # a host's change counters by slot of top-level key (``_changed``)
    answers: Any = None  # what the host keeps beside them (runtime.host.shared)


class SharedState:
    """Every tenant's shared state in this process, loaded on first use."""

    def __init__(self, backend: Backend, sync_ms: int = 50) -> None:
        self.backend = backend
        self._tenants: dict[str, TenantState] = {}
        self._lock = threading.Lock()  # memory
        self._sync_lock = threading.Lock()  # the backend's writes, in order
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(sync_ms / 1000.0,), name="wexec-shared-sync", daemon=True
        )
        self._thread.start()

    # -- reads and writes of one path ---------------------------------------------------------

    def get(self, tenant: str, path: list[str]) -> Any:
        """The value at ``path`` (``[]``: the whole state), or ``MISSING``. Not a copy: callers
        never change it, and serialise only what is not an object (writes replace values other
        than objects, never change them in place, so reading needs no lock)."""
        state = self._tenants.get(tenant)
        if state is None:
            with self._lock:
                state = self._of(tenant)
        return _walk(state.values, path)

    def snapshot(self, tenant: str, path: list[str]) -> bytes | None:
        """The JSON at ``path`` as it is now (``[]``: the whole state); None if it holds nothing."""
        with self._lock:
            found = _walk(self._of(tenant).values, path)
            return None if found is MISSING else orjson.dumps(found)

    def set(self, tenant: str, path: list[str], value: Any, cap: int, *,
            encoded: bytes | None = None, merge: bool = False) -> None:
        """Write ``value`` at ``path`` (``[]``: replace the whole state with an object);
        ``merge`` puts an object's keys into the object already there."""
        if not path:
            if not isinstance(value, dict):
                raise StateError("the whole shared state is an object; set a key instead")
            with self._lock:
                state = self._of(tenant)
                whole = {**state.values, **value} if merge else value
                self._replace(state, tenant, whole, cap)
            return
        raw = encoded if encoded is not None else orjson.dumps(value)
        if len(path) == 1 and not merge:  # the common write, kept short
            top = path[0]
            with self._lock:
                state = self._of(tenant)
                growth = len(top) + len(raw) - state.sizes.get(top, 0)
                _check_cap(state, tenant, growth, cap)
                state.values[top] = value
                state.sizes[top] = len(top) + len(raw)
                state.bytes += growth
                state.dirty.add(top)
                state.gen += 1
                _changed(state, top)
            return
        with self._lock:
            state = self._of(tenant)
            parent, at, value = _parent(state.values, path, value)
            if parent is None:
                raise StateError(f"shared.{'.'.join(at[:-1])} is not an object")
            top, leaf = at[0], at[-1]
            old = parent.get(leaf, MISSING)
            merged = bool(merge and isinstance(old, dict) and isinstance(value, dict))
            if merged:
                value = {**old, **value}
            if merged or at is not path:
                raw = orjson.dumps(value)
            if len(at) == 1:
                growth = len(top) + len(raw) - state.sizes.get(top, 0)
                _check_cap(state, tenant, growth, cap)
                state.sizes[top] = len(top) + len(raw)
            else:
                before = 0 if old is MISSING else len(leaf) + 4 + len(orjson.dumps(old))
                growth = len(leaf) + 4 + len(raw) - before
                _check_cap(state, tenant, growth, cap)
                state.sizes[top] += growth
            parent[leaf] = value
            state.bytes += growth
            state.dirty.add(top)
            state.gen += 1
            _changed(state, top)

    def delete(self, tenant: str, path: list[str]) -> bool:
        """Remove ``path`` (``[]``: everything); whether it held something."""
        with self._lock:
            state = self._of(tenant)
            if not path:
                had = bool(state.values)
                state.dirty.update(state.values)
                state.values, state.sizes, state.bytes = {}, {}, 0
                state.gen += 1
                _changed(state, None)
                return had
            top = path[0]
            if len(path) == 1:
                if top not in state.values:
                    return False
                del state.values[top]
                state.bytes -= state.sizes.pop(top)
            else:
                parent = _walk(state.values, path[:-1])
                if not isinstance(parent, dict) or path[-1] not in parent:
                    return False
                old = parent.pop(path[-1])
                shrink = len(path[-1]) + 4 + len(orjson.dumps(old))
                state.sizes[top] -= shrink
                state.bytes -= shrink
            state.dirty.add(top)
            state.gen += 1
            _changed(state, top)
            return True

    def keys(self, tenant: str, path: list[str]) -> list[str]:
        """The keys of the object at ``path``; [] if it is not an object."""
        with self._lock:
            found = _walk(self._of(tenant).values, path)
            return list(found) if isinstance(found, dict) else []

    def tenant(self, tenant: str) -> TenantState:
        """The tenant's state itself, for a reader that follows its ``gen`` and ``bytes``."""
        with self._lock:
            return self._of(tenant)

    def write_keys(self, tenant: str, writes: dict[str, tuple[bytes, Any] | None]
                   ) -> tuple[int, int]:
        """Write top-level keys at once, each (its JSON, its value) or None to delete it:
        the (generation before, after). The cap is not checked: the guest logged these
        writes within the room left when it last heard from the host (``runtime.host.shared``),
        so only writes made meanwhile by others can take the state past it, and by at most
        one log each."""
        with self._lock:
            state = self._of(tenant)
            before = state.gen
            values, sizes, versions = state.values, state.sizes, state.versions
            for key, item in writes.items():
                old = sizes.pop(key, 0)
                if item is None:
                    values.pop(key, None)
                    state.bytes -= old
                else:
                    raw, values[key] = item
                    size = sizes[key] = len(key) + len(raw)
                    state.bytes += size - old
                state.dirty.add(key)
                if versions is not None:  # _changed, inline: this runs for every request
                    versions[hash(key) & (len(versions) - 1)] += 1
            state.gen += 1
            return before, state.gen

    # -- atomic updates -------------------------------------------------------------------------

    def take(self, tenant: str, key: str) -> tuple[int, bytes | None]:
        """The key's (version, JSON) as the backend holds it now, this process's writes
        included: what a ``swap`` must find unchanged."""
        with self._sync_lock:
            self._write_dirty(tenant, key)
            version, raw = self.backend.read(tenant, key)
            with self._lock:
                self._apply(self._of(tenant), key, raw)
            return version, raw

    def swap(self, tenant: str, key: str, version: int, raw: bytes | None, cap: int) -> bool:
        """Write ``raw`` (None: delete) to ``key`` if its version is still ``version``."""
        value = MISSING if raw is None else orjson.loads(raw)
        with self._sync_lock:
            self._write_dirty(tenant, key)
            with self._lock:
                state = self._of(tenant)
                if raw is not None:
                    _check_cap(state, tenant, len(key) + len(raw) - state.sizes.get(key, 0), cap)
            if not self.backend.swap(tenant, key, version, raw):
                return False
            with self._lock:
                self._apply(self._of(tenant), key, raw, value)
            return True

    # -- keeping in step with the backend -----------------------------------------------------

    def sync(self) -> None:
        """Write what changed here, then take in what other processes wrote."""
        with self._sync_lock:
            rows: list[Row] = []
            with self._lock:
                for tenant, state in self._tenants.items():
                    for key in state.dirty:
                        value = state.values.get(key, MISSING)
                        rows.append(Row(tenant, key, None if value is MISSING else orjson.dumps(value)))
                    state.dirty.clear()
            try:
                self.backend.write(rows)
            except BaseException:
                with self._lock:  # written at the next sync instead
                    for row in rows:
                        self._tenants[row.tenant].dirty.add(row.key)
                raise
            changes = self.backend.changes()
            if changes:
                with self._lock:
                    for row in changes:
                        found = self._tenants.get(row.tenant)
                        if found is not None and row.key not in found.dirty:
                            self._apply(found, row.key, row.value)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sync()
        self.backend.close()

    def _run(self, period_s: float) -> None:
        ticks = 0
        while not self._stop.wait(period_s):
            ticks += 1
            try:
                self.sync()
                if ticks % MAINTAIN_EVERY == 0:
                    self.backend.maintain()
            except Exception:  # a failed sync is retried at the next tick
                log.exception("syncing shared state failed")

    # -- internals ------------------------------------------------------------------------------

    def _of(self, tenant: str) -> TenantState:
        """The tenant's state, loaded from the backend on first use (call with the lock held)."""
        state = self._tenants.get(tenant)
        if state is None:
            values, sizes = {}, {}
            for key, raw in self.backend.load(tenant).items():
                values[key] = orjson.loads(raw)
                sizes[key] = len(key) + len(raw)
            state = self._tenants[tenant] = TenantState(values, sizes, sum(sizes.values()))
        return state

    def _replace(self, state: TenantState, tenant: str, values: dict[str, Any], cap: int) -> None:
        sizes = {key: len(key) + len(orjson.dumps(value)) for key, value in values.items()}
        _check_cap(state, tenant, sum(sizes.values()) - state.bytes, cap)
        state.dirty.update(state.values)
        state.dirty.update(values)
        state.values, state.sizes, state.bytes = dict(values), sizes, sum(sizes.values())
        state.gen += 1
        _changed(state, None)

    def _write_dirty(self, tenant: str, key: str) -> None:
        """Write this process's pending write of ``key`` now (the sync lock held)."""
        with self._lock:
            state = self._of(tenant)
            if key not in state.dirty:
                return
            state.dirty.discard(key)
            value = state.values.get(key, MISSING)
            row = Row(tenant, key, None if value is MISSING else orjson.dumps(value))
        self.backend.write([row])

    @staticmethod
    def _apply(state: TenantState, key: str, raw: bytes | None, value: Any = MISSING) -> None:
        """Make memory hold ``raw`` for ``key`` (the lock held)."""
        state.bytes -= state.sizes.pop(key, 0)
        state.values.pop(key, None)
        state.gen += 1
        if raw is not None:
            state.values[key] = orjson.loads(raw) if value is MISSING else value
            state.sizes[key] = len(key) + len(raw)
            state.bytes += state.sizes[key]
        _changed(state, key)


def _parent(values: dict[str, Any], path: list[str], value: Any
            ) -> tuple[dict[str, Any] | None, list[str], Any]:
    """The object that will hold ``value`` at ``path``, the path to it and the value it holds:
    folders missing on the way are made, as ``value`` wrapped in objects under the deepest
    object that exists. (None, path, value) when something on the way is not an object."""
    found: Any = values
    for depth, name in enumerate(path[:-1]):
        step = found.get(name, MISSING)
        if step is MISSING:
            for missing in reversed(path[depth + 1:]):
                value = {missing: value}
            return found, path[: depth + 1], value  # a new list: the caller re-encodes value
        if not isinstance(step, dict):
            return None, path, value
        found = step
    return found, path, value


def _walk(values: dict[str, Any], path: list[str]) -> Any:
    found: Any = values
    for name in path:
        if not isinstance(found, dict):
            return MISSING
        found = found.get(name, MISSING)
        if found is MISSING:
            return MISSING
    return found


def _changed(state: TenantState, key: str | None) -> None:
    """After ``key`` (None: every key) changed: bump its slot's counter, if a host keeps them
    (an answer it kept for the key is stale from then on; the change must be made first)."""
    versions = state.versions
    if versions is None:
        return
    if key is None:
        for slot in range(len(versions)):
            versions[slot] += 1
    else:
        versions[hash(key) & (len(versions) - 1)] += 1


def _check_cap(state: TenantState, tenant: str, growth: int, cap: int) -> None:
    if growth > 0 and state.bytes + growth > cap:
        raise StateFull(
            f"shared state of {tenant} is full: this write would make it {state.bytes + growth} "
            f"bytes of JSON, past its cap of {cap} (WEXEC_SHARED_TENANT_BYTES); delete keys "
            "it no longer needs"
        )


_open: dict[Path, SharedState] = {}
_open_lock = threading.Lock()


def open_state(path: Path, sync_ms: int = 50) -> SharedState:
    """The process's ``SharedState`` over the SQLite file ``path`` (one per file), written
    out when the interpreter exits if nobody closed it before."""
    key = path.resolve()
    with _open_lock:
        state = _open.get(key)
        if state is None:
            state = _open[key] = SharedState(SQLiteBackend(key), sync_ms)
            atexit.register(state.sync)
    return state


def sync_all() -> None:
    """Write out every ``SharedState`` this process opened (they stay open)."""
    with _open_lock:
        states = list(_open.values())
    for state in states:
        state.sync()
