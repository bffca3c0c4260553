"""A WebSocket upgrade to a script, top to bottom, beside the HTTP path of ``gateway.py``.

tenant and route (catalog) → script enabled, worker with ``@websocket``? → ``@token`` (also as
a ``Sec-WebSocket-Protocol`` entry, since browsers cannot set Authorization) → Origin by
``@cors`` → connection caps → accept → ``open`` → each message → ``close``.
A refused upgrade is answered with an HTTP status before any frame (401 token, 403 origin,
503 caps) where the server supports ASGI's ``websocket.http.response`` extension, else closed
before its accept, which servers answer 403.

Each event of a connection runs in the script's worker instance (``Sandbox.socket_event``),
one at a time per connection, so its messages reach the script in order; a handler that throws
or times out closes its connection with 1011. What the script sends waits in the connection's
bounded queue (``host.websocket.Connection``), drained by one task per connection at the
client's pace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from starlette.types import Receive, Scope, Send

from runtime.host.websocket import GOING_AWAY, INTERNAL, RESTART, TOO_BIG, Connection, Full
from runtime.http import auth
from runtime.sandbox import ScriptError

if TYPE_CHECKING:
    from runtime.catalog.live import Catalog
    from runtime.catalog.tenants import Tenant
    from runtime.http.gateway import ScriptRequest
    from runtime.http.policy import Policy
    from runtime.sandbox import Sandbox
    from runtime.sandbox.types import LogRecord, Result

log = logging.getLogger("wexec.websocket")

PROTOCOL_TOKEN = "wexec.token."
"""A ``Sec-WebSocket-Protocol`` entry ``wexec.token.<token>`` carries the ``@token``."""

CLOSE_GRACE_S = 30.0
"""How long a close frame may wait behind a client that does not read before the connection is
dropped without it."""


class Refused(Exception):
    """An upgrade answered with an HTTP status instead of a connection."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error = status, error


class Noted(Protocol):
    """Where a handler's console output or failure goes (the gateway: the request log)."""

    def __call__(
        self, tenant: Tenant, policy: Policy, req: ScriptRequest, conn_id: str,
        logs: list[LogRecord], error: str | None, started: int, t0: int,
    ) -> None: ...


async def serve(
    catalog: Catalog[Policy], sandbox: Sandbox, scope: Scope, receive: Receive, send: Send,
    noted: Noted,
) -> None:
    """The ASGI app of a ``websocket`` scope outside the management API."""
    from runtime.http.gateway import decode  # the gateway imports this module

    if (await receive())["type"] != "websocket.connect":
        return
    req = decode({**scope, "method": "GET"})
    try:
        tenant, script, params = catalog.lookup(
            req.headers.get("host", ""), req.route_path, scope.get("wexec.tenant")
        )
        policy = script.policy if script is not None else None
        if script is None or script.artefact is None or policy is None or not policy.enabled:
            raise Refused(404, "not_found", f"no script serves {req.path}")
        magic = script.artefact.magic
        if not (magic.websocket and magic.mode == "worker"):
            raise Refused(400, "not_a_websocket", f"{policy.script} does not accept WebSocket "
                          "connections: add // @websocket and // @mode worker to it")
        offered = _protocols(req.headers)
        headers, query, url = req.headers, req.query, req.url
        if policy.token_digest is not None:
            found = auth.credentials(headers, query, url)
            presented = found.presented + [p[len(PROTOCOL_TOKEN):] for p in offered
                                           if p.startswith(PROTOCOL_TOKEN)]
            if not auth.accepts(policy.token_digest, presented):
                raise Refused(401, "unauthorized", f"{policy.script} requires its token: as "
                              "Authorization: Bearer, ?token=, or a Sec-WebSocket-Protocol "
                              f"entry {PROTOCOL_TOKEN}<token>")
            headers, query, url = found.headers, found.query, found.url
        origin = req.headers.get("origin")
        if origin and not _origin_allowed(policy.cors, origin, req.headers.get("host", "")):
            raise Refused(403, "origin_refused", f"{policy.script} does not accept WebSocket "
                          f"connections from {origin}; its // @cors allows {policy.cors}")
        try:
            conn = sandbox.sockets.open(tenant.name, script.artefact.path)
        except Full as full:
            raise Refused(503, "too_many_connections", str(full)) from None
    except Refused as refused:
        await _refuse(scope, send, refused)
        return
    headers = {k: v for k, v in headers.items() if k != "sec-websocket-protocol"}
    metadata = {"path": req.path, "url": url, "query": query, "params": params, "headers": headers}
    chosen = next((p for p in offered if not p.startswith(PROTOCOL_TOKEN)), None)
    if chosen is None and offered:  # a browser fails a handshake that answers none it offered
        chosen = offered[0]
    session = _Session(sandbox, script.artefact, conn, tenant, policy, send,
                       lambda *a: noted(tenant, policy, req, conn.id, *a))
    try:
        await send({"type": "websocket.accept", "subprotocol": chosen})
        await session.run(receive, req.ip, metadata)
    finally:
        sandbox.sockets.gone(conn)


class _Session:
    """One accepted connection: its events into the script, its queue out to the client."""

    def __init__(
        self, sandbox: Sandbox, artefact: Any, conn: Connection, tenant: Tenant, policy: Policy,
        send: Send, noted: Callable[[list[LogRecord], str | None, int, int], None],
    ) -> None:
        self.sandbox, self.artefact, self.conn = sandbox, artefact, conn
        self.tenant, self.policy, self.send = tenant.name, policy, send
        self.noted = noted  # a handler's console output or failure: logged like a request's
        self.writer: asyncio.Task[None] | None = None
        self.reader: asyncio.Task[int | None] | None = None
        self.reading = False  # the reader waits for the client (it may be cut off there)
        self.cut = False  # the reader was stopped by ``_cut``, not by the server
        self.last = 0.0  # when the client last sent a message (the loop's clock)
        self.idle: asyncio.TimerHandle | None = None
        # The event running in the script, if one is: its kind and when it started (wall clock
        # and perf counter, for the log); and what waits for it to end (``_turn``).
        self.running: str | None = None
        self.started = self.t0 = 0
        self.turn: asyncio.Future[None] | None = None

    async def run(self, receive: Receive, ip: str, metadata: dict[str, Any]) -> None:
        conn = self.conn
        self.writer = asyncio.ensure_future(self._pump())
        conn.on_close = self._cut
        client_code: int | None = None
        try:
            try:
                await self.sandbox.socket_worker(self.artefact, conn, tenant=self.tenant,
                                                 grants=self.policy.grants)
            except ScriptError as exc:  # the script's instance did not start: open failed
                self._failed("open", exc, time.time_ns(), time.perf_counter_ns())
            else:
                await self._event(["open", conn.id, ip, metadata], None)
            self.reader = asyncio.ensure_future(self._read(receive))
            try:
                client_code = await self.reader
            except asyncio.CancelledError:
                self.reader.cancel()  # the server stopped this connection
                raise
            await self._turn()  # the last message's event, still running if the reader was cut
            if conn.worker is not None and conn.worker.broken is None:
                code, reason = (client_code, "") if client_code is not None else conn.closing or (1005, "")
                await self._event(["close", conn.id, code, reason], None)
        finally:
            if self.idle is not None:
                self.idle.cancel()
            await self._finish(client_code is not None)
            # Break every cycle through this session (the connection's hook; its tasks, whose
            # exceptions' tracebacks hold this frame) so that reference counting frees it, and
            # the server's transport with it, when the connection ends. Left to the cyclic GC
            # (rare here: app.py raises its thresholds) they held ~20 KiB of native buffers per
            # closed connection on uvloop servers.
            conn.on_close = None
            self.reader = self.writer = self.idle = None

    async def _read(self, receive: Receive) -> int | None:
        """Each message of the client into the script, in order, until the connection closes;
        returns the client's close code if the client closed it.

        The reader waits for the client with a plain ``await receive()``, cut off by ``_cut``
        when the connection closes meanwhile (or idles): what a message costs on the event loop
        is what the script's event costs, and nothing per message for the timeouts. It does
        not wait for a message's event to end, only for the next message: that is handled once
        the event before it has ended (``_turn``), so the script still has a connection's
        events one at a time, and an echo costs the reader one wake-up per message.
        """
        conn, settings = self.conn, self.sandbox.settings
        limit = settings.ws_max_message_bytes
        idle = settings.ws_idle_timeout_ms / 1000
        loop = asyncio.get_running_loop()
        if idle:
            self.last = loop.time()
            self.idle = loop.call_later(idle, self._idle_check, idle)
        while conn.closing is None:
            self.reading = True
            try:
                message = await receive()
            except asyncio.CancelledError:
                if not self.cut:
                    raise
                return None
            finally:
                self.reading = False
            self.last = loop.time()
            if self.running is not None:
                await self._turn()
                if conn.closing is not None:  # the event before it closed the connection
                    return None
            if message["type"] == "websocket.disconnect":
                return int(message.get("code") or 1005)
            text: str | None = message.get("text")
            data: bytes | None = None if text is not None else message.get("bytes") or b""
            if (len(text) if text is not None else len(data or b"")) > limit:
                conn.close(TOO_BIG, f"a message is at most {limit} bytes "
                           "(WEXEC_WS_MAX_MESSAGE_BYTES)")
                return None
            self._start(["message", conn.id, text], data)
        return None

    def _cut(self) -> None:
        """The connection closes (``Connection.on_close``): stop reading the client if the
        reader waits for it; an event running goes on, and the reader stops after it."""
        if self.reading and self.reader is not None and not self.cut:
            self.cut = True
            self.reader.cancel()

    def _idle_check(self, idle: float) -> None:
        """Close a connection whose client sent nothing for ``idle`` seconds; else look again
        when it would have."""
        loop = asyncio.get_running_loop()
        quiet = loop.time() - self.last
        if quiet >= idle:
            self.idle = None
            self.conn.close(GOING_AWAY, "idle for longer than WEXEC_WS_IDLE_TIMEOUT_MS")
        else:
            self.idle = loop.call_later(idle - quiet, self._idle_check, idle)

    def _start(self, event: list[Any], data: bytes | None) -> None:
        """Start one event in the script; ``_ended`` hears how it went."""
        self.running = event[0]
        self.started, self.t0 = time.time_ns(), time.perf_counter_ns()
        try:
            self.sandbox.socket_event(self.conn, event, data, self._ended)
        except ScriptError as exc:  # its instance stopped before the event could enter it
            self._ended(exc)

    def _ended(self, outcome: Result | BaseException) -> None:
        """The running event ended. A handler's failure closes this connection only
        (``_failed``). What it printed, or its failure, goes to the request log; a quiet
        success does not (a line per message would drown the log)."""
        kind, self.running = self.running or "message", None
        if isinstance(outcome, ScriptError):
            self._failed(kind, outcome, self.started, self.t0)
        elif isinstance(outcome, BaseException):
            log.error("%s: ws.%s failed in the host", self.policy.script, kind, exc_info=outcome)
            self.conn.close(INTERNAL, "the host failed to run the event")
        elif outcome.logs:
            self.noted(outcome.logs, None, self.started, self.t0)
        turn = self.turn
        if turn is not None and not turn.done():
            turn.set_result(None)

    async def _turn(self) -> None:
        """Until the running event, if any, has ended."""
        while self.running is not None:
            self.turn = asyncio.get_running_loop().create_future()
            try:
                await self.turn
            finally:
                self.turn = None

    async def _event(self, event: list[Any], data: bytes | None) -> None:
        """Run one event to its end."""
        self._start(event, data)
        await self._turn()

    def _failed(self, kind: str, exc: ScriptError, started: int, t0: int) -> None:
        """A handler failed: logged, and 1011 for this connection, or 1012 if its worker
        stopped (a trap)."""
        self.noted(exc.logs, f"ws.{kind}: {exc.name}: {exc.message}", started, t0)
        if self.conn.worker is not None and self.conn.worker.broken is not None:
            self.sandbox.socket_failed(self.artefact, self.conn)
            self.conn.close(RESTART, "the script's worker restarted")
        else:
            log.warning("%s: ws.%s failed: %s: %s", self.policy.script, kind, exc.name,
                        exc.message)
            self.conn.close(INTERNAL, f"{exc.name}: {exc.message}")

    async def _pump(self) -> None:
        """Send what the script queued, as fast as the client takes it, then the close."""
        conn, send = self.conn, self.send
        loop = asyncio.get_running_loop()
        while True:
            if not conn.out and conn.closing is None:  # wait for frames (``Connection.wake``)
                conn.waiter = loop.create_future()
                try:
                    await conn.waiter
                finally:
                    conn.waiter = None
            while conn.out:
                frame = conn.take()
                if isinstance(frame, str):
                    await send({"type": "websocket.send", "text": frame})
                else:
                    await send({"type": "websocket.send", "bytes": frame})
            if conn.closing is not None:
                code, reason = conn.closing
                await send({"type": "websocket.close", "code": code, "reason": reason})
                return

    async def _finish(self, client_closed: bool) -> None:
        """Let the queue drain and the close frame go out (bounded), then drop the writer."""
        writer = self.writer
        assert writer is not None
        if client_closed:
            writer.cancel()
        else:
            self.conn.close()
            try:
                await asyncio.wait_for(asyncio.shield(writer), CLOSE_GRACE_S)
            except (TimeoutError, Exception):  # noqa: BLE001 - each server fails a send its own way
                writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)


def _protocols(headers: dict[str, str]) -> list[str]:
    value = headers.get("sec-websocket-protocol", "")
    return [p.strip() for p in value.split(",") if p.strip()]


def _origin_allowed(policy: str, origin: str, host: str) -> bool:
    """Browsers do not apply CORS to WebSockets, so the host does: ``@cors`` ``*`` or
    ``reflective`` admit any page, an origin only itself, and ``none`` only pages of the same
    host the socket is on."""
    if policy in ("*", "reflective"):
        return True
    if policy != "none":
        return origin == policy
    return origin.partition("://")[2] == host


async def _refuse(scope: Scope, send: Send, refused: Refused) -> None:
    if "websocket.http.response" in scope.get("extensions", {}):
        body = orjson.dumps({"error": refused.error, "message": str(refused)})
        await send({"type": "websocket.http.response.start", "status": refused.status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", b"%d" % len(body))]})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})
