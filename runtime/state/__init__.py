"""Shared state: each tenant's JSON values, kept in the host, seen by every script of the tenant.

``store.SharedState`` is the per-process map scripts read and write (through
``runtime.host.shared``) and the management API edits; ``backend.Backend`` is where it lasts
(``sqlite.SQLiteBackend`` now, in the data folder; a Redis one later for several nodes).
"""

from runtime.state.backend import Backend, Row
from runtime.state.store import SharedState, StateError, StateFull, open_state

__all__ = ["Backend", "Row", "SharedState", "StateError", "StateFull", "open_state"]
