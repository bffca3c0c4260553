"""WebSocket connections of worker scripts, and their rooms: the host half of the ``ws`` global.

A socket's frames reach its script as entries of a worker crossing (``WorkerDriver.socket``);
what the script does with sockets (send, close, join a room, publish) comes back in the
crossing's report as a list of actions (``"ws"``, guest/ABI.md) the ``Hub`` applies. Rooms live
here, per tenant and script, so a broadcast to a thousand sockets is one action of one
crossing, and two tenants' rooms of the same name never meet.

What waits to be sent to a client is bounded (``ws_send_queue_bytes``): a client that reads
slower than its script writes is closed with 1008 rather than held in the host's memory.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from runtime.host import Unit
from runtime.host.websocket.settings import WebSocketSettings

Frame = str | bytes
"""A message to send: text or binary."""

NORMAL, GOING_AWAY, POLICY, TOO_BIG, INTERNAL, RESTART, TRY_LATER = (
    1000, 1001, 1008, 1009, 1011, 1012, 1013,
)
"""The close codes wexec sends (RFC 6455 §7.4, and IANA's registry for 1012 and 1013)."""


@dataclass(eq=False, slots=True)
class Connection:
    """One client's socket: the frames waiting for it, and how it ends."""

    id: str
    tenant: str
    script: str
    max_queue: int
    worker: Any = None  # the worker instance (a ``Driver``) its events run on
    runs: Any = None  # (timeout ms, offload) of its events there, found once (Sandbox)
    rooms: set[str] = field(default_factory=set)
    out: deque[Frame] = field(default_factory=deque)
    queued: int = 0
    closing: tuple[int, str] | None = None  # set once: the close frame to send after ``out``
    waiter: asyncio.Future[None] | None = None  # the writer's, while it waits for frames
    on_close: Callable[[], Any] | None = None  # who stops reading the client once it closes

    def push(self, frame: Frame) -> None:
        """Queue ``frame``; past the queue's bound the client is too slow and is closed."""
        if self.closing is not None:
            return
        self.queued += len(frame)
        if self.queued > self.max_queue:
            self.out.clear()
            self.queued = 0
            self.close(POLICY, "the client reads too slowly: more than "
                       f"{self.max_queue // (1024 * 1024)} MiB waited to be sent to it")
            return
        self.out.append(frame)
        self.wake()

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Close after what is queued (the first close wins)."""
        if self.closing is None:
            self.closing = (code, reason[:120])  # a close frame's reason is at most 123 bytes
            self.wake()
            if self.on_close is not None:
                self.on_close()

    def wake(self) -> None:
        """Wake the writer if it waits (a future, not an ``asyncio.Event``: this runs for every
        frame, and an idle connection holds nothing for it)."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def take(self) -> Frame:
        frame = self.out.popleft()
        self.queued -= len(frame)
        return frame


class Group:
    """The sockets of one script of one tenant, and its rooms."""

    __slots__ = ("members", "rooms")

    def __init__(self) -> None:
        self.members: dict[str, Connection] = {}
        self.rooms: dict[str, set[Connection]] = {}

    def join(self, conn: Connection, room: str) -> None:
        self.rooms.setdefault(room, set()).add(conn)
        conn.rooms.add(room)

    def leave(self, conn: Connection, room: str) -> None:
        members = self.rooms.get(room)
        if members is not None:
            members.discard(conn)
            if not members:
                del self.rooms[room]
        conn.rooms.discard(room)


class Full(Exception):
    """An upgrade past a connection cap: answered 503, naming the setting."""


class Hub:
    """Every open socket of the process, by script; applies what scripts do with them."""

    def __init__(self, settings: WebSocketSettings) -> None:
        self.settings = settings
        self._groups: dict[tuple[str, str], Group] = {}
        self._per_tenant: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._prefix = os.urandom(4).hex()

    def open(self, tenant: str, script: str) -> Connection:
        """A new connection of ``script``, counted against the caps (``Full`` past one)."""
        settings = self.settings
        group = self._groups.setdefault((tenant, script), Group())
        if len(group.members) >= settings.ws_max_connections_per_script:
            raise Full(f"{script} holds {len(group.members)} WebSocket connections, its cap "
                       "(WEXEC_WS_MAX_CONNECTIONS_PER_SCRIPT)")
        held = self._per_tenant.get(tenant, 0)
        if held >= settings.ws_max_connections_per_tenant:
            raise Full(f"this tenant's scripts hold {held} WebSocket connections, its cap "
                       "(WEXEC_WS_MAX_CONNECTIONS_PER_TENANT)")
        conn = Connection(f"{self._prefix}{next(self._ids):x}", tenant, script,
                          settings.ws_send_queue_bytes)
        group.members[conn.id] = conn
        self._per_tenant[tenant] = held + 1
        return conn

    def connections(self, tenant: str) -> int:
        """How many sockets the tenant's scripts hold open in this process (monitor/stats)."""
        return self._per_tenant.get(tenant, 0)

    def gone(self, conn: Connection) -> None:
        """Forget a connection that ended: it leaves its rooms and the counts."""
        group = self._groups.get((conn.tenant, conn.script))
        if group is None or group.members.pop(conn.id, None) is None:
            return
        for room in list(conn.rooms):
            group.leave(conn, room)
        if not group.members:
            del self._groups[(conn.tenant, conn.script)]
        self._per_tenant[conn.tenant] -= 1

    def restart(self, worker: Any) -> None:
        """``worker`` was stopped (a trap, its script changed): its sockets are closed with
        1012, so clients reconnect to the instance that replaces it."""
        for group in self._groups.values():
            for conn in group.members.values():
                if conn.worker is worker:
                    conn.close(RESTART, "the script's worker restarted")

    def apply(self, tenant: str, script: str, actions: list[list[Any]], blob: bytes) -> None:
        """Do what a crossing's ``ws`` report lists, for ``script``'s sockets only."""
        group = self._groups.get((tenant, script))
        if group is None:
            return
        members = group.members
        for action in actions:
            verb, target = action[0], action[1]
            if verb == "bcast":
                to: Iterable[Connection] = (
                    members.values() if target is None else group.rooms.get(target, ())
                )
                frame = _frame(action[2], blob)
                for member in list(to):
                    member.push(frame)
                continue
            conn = members.get(target)
            if conn is None:
                continue
            if verb == "send":
                conn.push(_frame(action[2], blob))
            elif verb == "pub":
                frame = _frame(action[3], blob)
                for other in list(group.rooms.get(action[2], ())):
                    if other is not conn:
                        other.push(frame)
            elif verb == "sub":
                group.join(conn, str(action[2]))
            elif verb == "unsub":
                group.leave(conn, str(action[2]))
            elif verb == "close":
                conn.close(_close_code(action[2]), str(action[3] or ""))


def _frame(data: Any, blob: bytes) -> Frame:
    """A message as the guest lists it: text, or a reference into the output blob (of text,
    UTF-8, or bytes)."""
    if isinstance(data, str):
        return data
    off, length = int(data.get("off", 0)), int(data.get("len", 0))
    chunk = blob[off : off + length]
    return chunk.decode() if data.get("text") else chunk


def _close_code(code: Any) -> int:
    """What a script may close with: 1000, or one of the 3000-4999 range for applications."""
    return code if isinstance(code, int) and (code == NORMAL or 3000 <= code <= 4999) else NORMAL


UNIT = Unit(
    name="websocket",
    granted_by="// @websocket with // @mode worker",
    settings=WebSocketSettings,
)
"""The unit's settings section. It lists no ops: sockets reach the guest as crossing entries
and leave it as the report's ``ws`` actions, for the sockets of the script that reports them,
so the registry does not hold it (a script without ``@websocket`` never has a socket)."""
