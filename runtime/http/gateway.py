"""The request path for scripts, top to bottom, as one ASGI application.

tenant and route (catalog) → script enabled? → CORS preflight → @token → body within limit →
@concurrent slot → sandbox.invoke under @timeout → response with CORS headers → request log.
Any step may stop the request with an `HTTPError`, answered as JSON; no script failure escapes.
What a script returns is checked (`response.ResponseRules`) before the server sees any of it,
and every request that reached a script leaves one line in its log, whatever happened while
the answer was being sent.
A script's relative ``fetch('/path')`` comes back in through ``dispatch``: the same path, run
in-process for the caller's tenant, without a socket; ``x-wexec-hops`` counts the scripts a
request has passed through, and past ``MAX_HOPS`` the answer is 508.
A streamed response is sent as its chunks arrive; its @concurrent slot is held until it ends, and
a script failure mid-stream leaves the body unfinished, so the server cuts the connection and the
client can tell the body is incomplete.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote

from starlette.types import Message, Receive, Scope, Send

from runtime.catalog.live import Catalog, Script
from runtime.catalog.tenants import Tenant
from runtime.host.fetch import HOPS_HEADER, MAX_HOPS
from runtime.http import auth, cors, websocket
from runtime.http.errors import (
    HTTPError,
    invalid_response,
    not_found,
    script_failed,
    timed_out,
    unauthorized,
)
from runtime.http.limits import LoadShedder, read_body
from runtime.http.policy import Policy, compile_failed
from runtime.http.response import ResponseRuleBroken, ResponseRules
from runtime.observe import tracing
from runtime.observe.access_log import AccessLog, Entry
from runtime.observe.metrics import Metrics
from runtime.observe.redact import Redactor, cookie_values
from runtime.sandbox import (
    BodyStream,
    Invocation,
    LogRecord,
    Result,
    ScriptError,
    ScriptMemoryError,
    ScriptTimeout,
)
from runtime.types import Query

if TYPE_CHECKING:
    from runtime.compiler import Artefact
    from runtime.sandbox import Sandbox

log = logging.getLogger("wexec.http")

_HTTP1 = frozenset({"1.0", "1.1"})
"""HTTP versions where a request without Content-Length or Transfer-Encoding has no body."""


@dataclass(slots=True)
class ScriptRequest:
    """The parts of an ASGI request the path needs, decoded once."""

    method: str
    path: str  # decoded, as the script sees it
    route_path: str  # still percent-encoded: the router splits it before decoding segments
    url: str
    headers: dict[str, str]
    query: Query
    ip: str
    may_have_body: bool = True
    body: bytes = b""  # set once read, so the request log has it even when the script fails


@dataclass(slots=True)
class Dispatched:
    """A response to a request made in-process (``Gateway.dispatch``): its head, and its body
    whole (``rest`` None) or as it arrives (``rest``, ``body`` empty)."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    rest: AsyncIterator[bytes] | None


@dataclass(slots=True)
class _Refusal:
    """A request the gateway answers before any script runs: the error, and its CORS headers."""

    error: HTTPError
    extra: list[tuple[str, str]]


class _Rest:
    """The rest of an in-process response body, as the gateway sends it; closing it early is
    the client going away (its request ends), even if it was never read."""

    def __init__(
        self, sent: asyncio.Queue[Message], gone: asyncio.Event, task: asyncio.Future[None],
        first: bytes,
    ) -> None:
        self.sent, self.gone, self.task = sent, gone, task
        self.first = first  # the chunk that came with the head
        self.done = False

    def __aiter__(self) -> _Rest:
        return self

    async def __anext__(self) -> bytes:
        if self.first:
            chunk, self.first = self.first, b""
            return chunk
        while not self.done:
            message = await self.sent.get()
            self.done = not message.get("more_body")
            if message.get("body"):
                return bytes(message["body"])
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.gone.set()
        if not self.task.done():
            self.task.cancel()


def decode(scope: Scope) -> ScriptRequest:
    raw_headers = scope["headers"]
    headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw_headers}
    if len(headers) < len(raw_headers):  # a repeated header: its values joined, in order
        headers = {}
        for raw_name, raw_value in raw_headers:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            before = headers.get(name)
            headers[name] = value if before is None else f"{before}, {value}"
    raw_path = scope.get("raw_path")
    route_path = raw_path.decode("latin-1") if raw_path else quote(scope["path"])
    client = scope.get("client")
    return _request(
        scope["method"], scope["path"], route_path, scope.get("query_string", b"").decode("latin-1"),
        headers, scope.get("scheme", "http"), client[0] if client else "",
        _may_have_body(scope, headers),
    )


def _request(
    method: str, path: str, route_path: str, qs: str, headers: dict[str, str], scheme: str,
    ip: str, may_have_body: bool,
) -> ScriptRequest:
    """A request from its decoded parts: its query parsed, its URL made."""
    query: Query = {}
    for key, value in parse_qsl(qs, keep_blank_values=True) if qs else ():
        seen = query.get(key)
        if seen is None:
            query[key] = value
        elif isinstance(seen, list):
            seen.append(value)
        else:
            query[key] = [seen, value]
    url = f"{scheme}://{headers.get('host', '')}{route_path}" + (f"?{qs}" if qs else "")
    return ScriptRequest(method, path, route_path, url, headers, query, ip, may_have_body)


def _may_have_body(scope: Scope, headers: dict[str, str]) -> bool:
    """False for an HTTP/1 request that declares no body: there is nothing to `receive`."""
    return (
        "content-length" in headers or "transfer-encoding" in headers
        or scope.get("http_version") not in _HTTP1
    )


class Gateway:
    """Runs the script a request routes to; one instance serves every tenant of the process."""

    def __init__(
        self, catalog: Catalog[Policy], sandbox: Sandbox, access_log: AccessLog, max_body: int,
        shedder: LoadShedder, rules: ResponseRules, metrics: Metrics | None = None,
    ) -> None:
        self.catalog = catalog
        self.sandbox = sandbox
        self.access_log = access_log
        self.max_body = max_body
        self.shedder = shedder
        self.rules = rules
        self.metrics = metrics if metrics is not None else Metrics(enabled=False)
        self._loop = asyncio.get_running_loop()
        self._tickets = itertools.count(1)
        self._claims: dict[int, Dispatched | BaseException | asyncio.Future[Dispatched]] = {}
        self._notes: deque[Callable[[], None]] = deque()  # inline requests' bookkeeping
        self._noting = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started, t0 = time.time_ns(), time.perf_counter_ns()
        entered = self._enter(scope)
        if isinstance(entered, _Refusal):
            err = entered.error
            await _send(send, err.status, _trusted(err.headers, entered.extra), err.body())
            return
        req, tenant, script, policy, params, extra = entered
        result: Result | None = None
        error: str | None = None
        size = 0
        n, traced = self._begin(tenant, policy, req, started, t0)
        try:
            result, head, error = await self._answer(tenant, script, policy, params, req,
                                                     receive, extra)
            with tracing.maybe("response"):
                size, cut = await self._respond(send, receive, result, head, policy)
            error = cut or error
        except Exception as exc:  # noqa: BLE001 - each server fails a send its own way
            error = f"sending the response failed: {exc!r}"
        except asyncio.CancelledError:
            error = "the server cancelled the request, as its client went away"
            raise
        finally:
            self._end(tenant, policy, req, result, size, error, started, t0, n, traced)

    def _enter(self, scope: Scope) -> tuple[
        ScriptRequest, Tenant, Script[Policy] | None, Policy | None, dict[str, Any],
        list[tuple[str, str]],
    ] | _Refusal:
        """The request read and routed, and admitted by the load shedder; or the error that
        answers it."""
        try:
            req = decode(scope)
            tenant, script, params = self.catalog.lookup(
                req.headers.get("host", ""), req.route_path, scope.get("wexec.tenant")
            )
            policy: Policy | None = script.policy if script is not None else None
            extra = cors.allow_headers(policy.cors, req.headers.get("origin")) if policy else []
        except Exception as exc:  # a request the path cannot even read still gets JSON
            log.exception("internal error reading %s %s", scope.get("method"), scope.get("path"))
            return _Refusal(_internal_error(exc), [])
        try:
            self.shedder.enter()
        except HTTPError as err:
            return _Refusal(err, extra)
        return req, tenant, script, policy, params, extra

    def _begin(
        self, tenant: Tenant, policy: Policy | None, req: ScriptRequest, started: int, t0: int,
    ) -> tuple[int, Any]:
        """The request counted (metrics) and traced, once admitted."""
        n = self.metrics.begin(tenant.name, policy.script if policy else "", req.method, req.path,
                               started, t0)
        traced = (tracing.start_invocation(req.headers, tenant.name, policy.script if policy
                                           else "", req.method)
                  if tracing.tracer is not None else None)
        return n, traced

    async def _answer(
        self, tenant: Tenant, script: Script[Policy] | None, policy: Policy | None,
        params: dict[str, Any], req: ScriptRequest, receive: Receive, extra: list[tuple[str, str]],
        begun: Any = None,
    ) -> tuple[Result, list[tuple[bytes, bytes]], str | None]:
        """What answers the request, its head as the server takes it, and the error it names."""
        try:
            result = await self._run(tenant, script, policy, params, req, receive, begun)
            assert policy is not None  # _run answers only for a script it could run
            try:
                return result, self._head(result, policy, extra), None
            except HTTPError:
                if result.stream is not None:
                    await result.stream.aclose()
                raise
        except HTTPError as err:
            return _answer_error(err, policy, req, extra)
        except Exception as exc:  # a bug on the path must still answer, and keep the process up
            log.exception("internal error serving %s %s", req.method, req.path)
            return _answer_error(_internal_error(exc), policy, req, extra)

    def _head(
        self, result: Result, policy: Policy, extra: list[tuple[str, str]]
    ) -> list[tuple[bytes, bytes]]:
        """``result``'s head as the server takes it, CORS headers and all; an ``HTTPError`` if
        the script's headers break a rule."""
        try:
            head = self.rules.head(result.status, result.headers)
        except ResponseRuleBroken as broken:
            raise invalid_response(policy.script, str(broken), result.logs) from None
        if extra:
            head += _trusted(extra)
        return head

    def _end(
        self, tenant: Tenant, policy: Policy | None, req: ScriptRequest, result: Result | None,
        size: int, error: str | None, started: int, t0: int, n: int, traced: Any,
    ) -> None:
        """After the body (a stream is a request in progress until it ends): the shedder's
        slot back, the metrics, the trace and the request's log line."""
        self.shedder.leave()
        status = self._finished(tenant, policy, req, result, size, error, started, t0, n)
        if traced is not None:
            tracing.end_invocation(traced, status, error)

    async def _respond(
        self, send: Send, receive: Receive, result: Result, head: list[tuple[bytes, bytes]],
        policy: Policy | None,
    ) -> tuple[int, str | None]:
        """Send the answer; its size, and what cut a stream short."""
        if result.stream is None:
            await _send(send, result.status, head, result.body)
            return len(result.body), None
        assert policy is not None
        return await _send_stream(send, receive, result.stream, result.status, head, policy)

    async def websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket upgrade to a script (``runtime.http.websocket``)."""
        await websocket.serve(self.catalog, self.sandbox, scope, receive, send, self._socket_noted)

    def _socket_noted(
        self, tenant: Tenant, policy: Policy, req: ScriptRequest, conn_id: str,
        logs: list[LogRecord], error: str | None, started: int, t0: int,
    ) -> None:
        """A WebSocket handler's console output or failure, as a request log line: method
        ``WS``, the upgrade's path, status 101, the connection's id as its execution id."""
        if policy.log_level == "none":
            return
        entry = Entry(
            policy.script, "WS", req.path, 101, started,
            (time.perf_counter_ns() - t0) // 1000 / 1000, req.query, req.ip, req.headers, b"", [],
            0, logs, error, conn_id,
        )
        self.access_log.add(tenant.slug, entry, policy.log_level, False, _redactor(policy, req))

    async def dispatch(
        self, tenant: str, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
        begun: Any = None,
    ) -> Dispatched:
        """Run one request for ``tenant`` through this same path, in-process: what a script's
        relative ``fetch`` makes (``target`` is a path and query). The body is paced by its
        reader; a reader that stops early is a client that went away. ``begun``: the request
        already started in its caller's crossing (``inline``), which the script's run follows."""
        scope = _scope(tenant, method, target, headers, body)
        requested = False
        gone = asyncio.Event()

        async def receive() -> Message:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        # An answer that is not streamed is made here, without the ASGI round of a server
        # (a task, a queue of messages, the head encoded and decoded again): most are.
        started, t0 = time.time_ns(), time.perf_counter_ns()
        entered = self._enter(scope)
        if isinstance(entered, _Refusal):
            err = entered.error
            return _dispatched(err.status, _trusted(err.headers, entered.extra), err.body())
        req, owner, script, policy, params, extra = entered
        n, traced = self._begin(owner, policy, req, started, t0)
        error: str | None = None
        try:
            result, head, error = await self._answer(owner, script, policy, params, req,
                                                     receive, extra, begun)
        except asyncio.CancelledError:  # _answer answers every error itself
            self._end(owner, policy, req, None, 0, "the fetch that made this request was "
                      "cancelled", started, t0, n, traced)
            raise
        if result.stream is None:
            self._end(owner, policy, req, result, len(result.body), error, started, t0, n, traced)
            return _dispatched(result.status, head, result.body)
        assert policy is not None  # only a script's answer streams
        stream_policy = policy
        if traced is not None:  # it ends in stream_out's task; this one goes on without it
            traced = tracing.leave_invocation(traced)
        sent: asyncio.Queue[Message] = asyncio.Queue(maxsize=2)  # the head and one chunk

        async def stream_out() -> None:
            size, cut = 0, None
            try:
                size, cut = await self._respond(sent.put, receive, result, head, stream_policy)
            finally:
                self._end(owner, policy, req, result, size, cut or error, started, t0, n,
                          traced)

        task = asyncio.ensure_future(stream_out())
        try:
            start = await sent.get()
            first = await sent.get()
        except BaseException:
            gone.set()
            task.cancel()
            raise
        status = int(start["status"])
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start["headers"]]
        chunk = first.get("body", b"")
        if not first.get("more_body"):
            return Dispatched(status, _REASONS.get(status, ""), headers, chunk, None)
        return Dispatched(status, _REASONS.get(status, ""), headers, b"",
                          _Rest(sent, gone, task, chunk))

    def inline(
        self, tenant: str, method: str, target: str, headers: dict[str, str], body: bytes,
        deadline: float | None, encode: Callable[[Dispatched], bytes], room: int,
    ) -> bytes | int | None:
        """``dispatch``, answered here and now on the guest thread whose crossing asks for it:
        a relative fetch to a worker script free to take it runs inside its caller's crossing
        (``WorkerDriver.nested``), with no event loop turn and no thread hop between the two.

        The answer as ``encode`` puts it, when that fits ``room``; else a ticket for
        ``claim``: for a larger answer, or a timeout (``deadline``, the caller's, came first),
        or a request that goes on (it awaits an operation, it streams), which ``dispatch`` then
        follows on the event loop. None, before anything ran, for any other case: ``dispatch``
        answers it (not a worker, no instance yet or a busy one, ``@concurrent``, a refusal, a
        preflight, tracing on, this very thread running the event loop, fetches nested
        ``MAX_INLINE`` deep). The load shedder does not count it: its caller holds a slot
        already. Its log line and figures are noted on the event loop.
        """
        if (tracing.tracer is not None or _inline.depth >= MAX_INLINE
                or asyncio._get_running_loop() is not None):
            return None
        started, t0 = time.time_ns(), time.perf_counter_ns()
        route_path, _, qs = target.partition("#")[0].partition("?")
        fields = {"host": "localhost", **headers, "content-length": str(len(body))}
        req = _request(method, unquote(route_path), route_path, qs, fields, "http", "", True)
        owner, script, params = self.catalog.lookup(
            req.headers.get("host", ""), req.route_path, tenant
        )
        try:  # a refusal is answered by ``dispatch``, as are a preflight and @concurrent
            admitted = _admit(owner, script, script.policy if script else None, req)
        except HTTPError:
            return None
        if isinstance(admitted, Result):
            return None
        artefact, policy, inv = admitted
        if artefact.magic.mode != "worker" or policy.limiter is not None:
            return None
        driver = self.sandbox.live_worker(artefact)
        if driver is None:
            return None
        limit = timeout = policy.timeout_ms
        if deadline is not None:
            left = int((deadline - time.monotonic()) * 1000.0)
            if left <= 0:
                return None
            timeout = left if limit is None else min(limit, left)
        req.body = inv.body = body
        inv.params = params
        _inline.depth += 1
        try:
            outcome = driver.nested(inv, timeout, self._loop)
        finally:
            _inline.depth -= 1
        if outcome is None:
            return None
        ticket = next(self._tickets)
        if len(self._claims) >= CLAIMS_KEPT:  # callers that never came for theirs
            for stale in list(self._claims)[: CLAIMS_KEPT // 2]:
                self._claims.pop(stale, None)
        if not isinstance(outcome, (Result, ScriptError)):  # it goes on: the loop follows it
            self._loop.call_soon_threadsafe(
                self._follow, ticket, tenant, method, target, list(headers.items()), body,
                (driver, outcome),
            )
            return ticket
        extra = cors.allow_headers(policy.cors, req.headers.get("origin"))
        if isinstance(outcome, ScriptError):
            result, head, error = _answer_error(_script_failed(outcome, policy), policy, req,
                                                extra)
        else:
            result, error = outcome, None
            result.sandbox_ms = (time.perf_counter_ns() - t0) / 1e6
            try:
                head = self._head(result, policy, extra)
            except HTTPError as err:
                result, head, error = _answer_error(err, policy, req, extra)
        self._note(owner, policy, req, result, error, started, t0, time.perf_counter_ns())
        if isinstance(outcome, ScriptTimeout) and timeout != limit:
            self._claims[ticket] = TimeoutError()  # the caller's time ran out, not the script's
            return ticket
        answer = _dispatched(result.status, head, result.body)
        encoded = encode(answer)
        if len(encoded) <= room:
            return encoded
        self._claims[ticket] = answer
        return ticket

    async def claim(self, ticket: int) -> Dispatched:
        """The answer ``inline`` left under ``ticket``, once it is known."""
        held = self._claims.pop(ticket, None)
        if held is None:
            raise LookupError(f"no in-process answer is waiting under ticket {ticket}")
        if isinstance(held, BaseException):
            raise held
        if isinstance(held, Dispatched):
            return held
        return await held

    def _follow(
        self, ticket: int, tenant: str, method: str, target: str, headers: list[tuple[str, str]],
        body: bytes, begun: Any,
    ) -> None:
        self._claims[ticket] = asyncio.ensure_future(
            self.dispatch(tenant, method, target, headers, body, begun)
        )

    def _note(
        self, owner: Tenant, policy: Policy, req: ScriptRequest, result: Result,
        error: str | None, started: int, t0: int, ended: int,
    ) -> None:
        """``_begin`` and ``_finished`` for a request ``inline`` answered, on the event loop,
        whose the figures and the log are: queued, and done every ``NOTES_S`` (waking the loop
        up from another thread costs more than noting a request does)."""

        def note() -> None:
            n = self.metrics.begin(owner.name, policy.script, req.method, req.path, started, t0)
            self._finished(owner, policy, req, result, len(result.body), error, started, t0, n,
                           ended)

        self._notes.append(note)
        if not self._noting:
            self._noting = True
            self._loop.call_soon_threadsafe(self._loop.call_later, NOTES_S, self._noted)

    def _noted(self) -> None:
        self._noting = False
        notes = self._notes
        while notes:
            notes.popleft()()

    def _finished(
        self, tenant: Tenant, policy: Policy | None, req: ScriptRequest, result: Result | None,
        size: int, error: str | None, started: int, t0: int, n: int, ended: int = 0,
    ) -> int:
        """Count the request and queue its log line, whatever happened while answering or
        sending; returns its status. Both only note what is known now: the figures and the
        line are made later, in batches (`Metrics`, `AccessLog`). ``ended``: when it ended
        (``perf_counter_ns``), if not now."""
        ended = ended or time.perf_counter_ns()
        status = result.status if result is not None else 500
        if self.metrics.enabled:
            self.metrics.end(n, ended, status, result.sandbox_ms if result else 0.0,
                             result.cold if result else False, result.memory if result else 0)
        if policy is not None and policy.log_level != "none":
            headers, logs = (result.headers, result.logs) if result is not None else ([], [])
            entry = Entry(
                policy.script, req.method, req.path, status, started, (ended - t0) // 1000 / 1000,
                req.query, req.ip, req.headers, req.body, headers, size, logs, error,
                self.metrics.request_id(n),
            )
            self.access_log.add(tenant.slug, entry, policy.log_level, policy.log_request_body,
                                _redactor(policy, req))
        return status

    async def _run(
        self, tenant: Tenant, script: Script[Policy] | None, policy: Policy | None,
        params: dict[str, Any], req: ScriptRequest, receive: Receive, begun: Any = None,
    ) -> Result:
        admitted = _admit(tenant, script, policy, req)
        if isinstance(admitted, Result):
            return admitted
        artefact, policy, invocation = admitted
        if req.may_have_body:
            req.body = await read_body(
                receive, invocation.headers.get("content-length"), self.max_body
            )
        invocation.params, invocation.body, invocation.begun = params, req.body, begun
        return await self._invoke(tenant, artefact, policy, invocation)

    async def scheduled(self, tenant: Tenant, script: Script[Policy]) -> tuple[int, str | None]:
        """Run `script` as its `@schedule` does: a body-less GET of its route with
        `metadata.trigger` 'schedule', under the script's own limits (time, memory,
        `@concurrent`, grants) but not its `@token`, which guards it from clients, not from its
        own directive. Logged like a request; answers the status and what went wrong, if anything.
        """
        started, t0 = time.time_ns(), time.perf_counter_ns()
        path = script.route.pattern
        req = ScriptRequest("GET", path, path, f"http://localhost{path}",
                            {"user-agent": "wexec-scheduler"}, {}, "", may_have_body=False)
        policy = script.policy
        result: Result | None = None
        error: str | None = None
        size = 0
        n = self.metrics.begin(tenant.name, policy.script if policy else "", req.method, path,
                               started, t0)
        try:
            if script.artefact is None or policy is None:
                raise compile_failed(script.route.rel, script.error, {}, {})
            invocation = Invocation(req.method, path, req.url, req.headers, trigger="schedule")
            result = await self._invoke(tenant, script.artefact, policy, invocation)
            if result.stream is not None:
                async for chunk in result.stream:
                    size += len(chunk)
            else:
                size = len(result.body)
        except ScriptError as exc:  # mid-stream
            assert policy is not None
            error = _script_failed(exc, policy).message
        except HTTPError as err:
            result, _, error = _answer_error(err, policy, req, [])
        finally:
            status = self._finished(tenant, policy, req, result, size, error, started, t0, n)
        return status, error

    async def _invoke(self, tenant: Tenant, artefact: Artefact, policy: Policy,
                      invocation: Invocation) -> Result:
        """Run one invocation within the script's @concurrent, @timeout and grants."""
        limiter = policy.limiter
        if limiter is not None:
            await limiter.acquire()
        held_by_stream = False  # a streamed response keeps its @concurrent slot until it ends
        try:
            t0 = time.perf_counter()
            with tracing.maybe("sandbox"):
                if tracing.tracer is not None:  # its host ops' spans are children of this one
                    invocation.trace = contextvars.copy_context()
                result = await self.sandbox.invoke(
                    artefact, invocation, timeout_ms=policy.timeout_ms, tenant=tenant.name,
                    grants=policy.grants,
                )
            result.sandbox_ms = (time.perf_counter() - t0) * 1000.0
            if limiter is not None and result.stream is not None:
                result.stream.on_close(limiter.release)
                held_by_stream = True
            return result
        except ScriptError as exc:
            raise _script_failed(exc, policy) from None
        finally:
            if limiter is not None and not held_by_stream:
                limiter.release()


MAX_INLINE = 4
"""Relative fetches nested inside one another's crossings on one guest thread, at most: each
holds a guest call stack on the thread's own stack. Deeper ones go through the event loop."""
NOTES_S = 0.05
"""How long the log line and figures of a request ``inline`` answered may wait to be noted."""
CLAIMS_KEPT = 1024
"""Answers ``inline`` keeps for callers to claim; past it, the oldest half is let go."""


class _Inline(threading.local):
    depth = 0


_inline = _Inline()


def _admit(
    tenant: Tenant, script: Script[Policy] | None, policy: Policy | None, req: ScriptRequest,
) -> tuple[Artefact, Policy, Invocation] | Result:
    """The checks before the script runs: its artefact and policy, and the request as it gets
    it (credentials taken out); or the answer to a CORS preflight; an ``HTTPError`` for a
    refusal (a loop of fetches, no such script, one that failed to compile or is disabled, a
    missing ``@token``)."""
    hops = _hops(req.headers)
    if hops > MAX_HOPS:
        raise HTTPError(
            508, "loop_detected",
            f"{req.path}: this request has passed through {hops} scripts fetching one another "
            f"({HOPS_HEADER}); a chain of fetches stops past {MAX_HOPS}",
            path=req.path,
        )
    if script is None:
        raise not_found(tenant.name, req.path)
    if script.artefact is None or policy is None:
        raise compile_failed(script.route.rel, script.error, req.headers, req.query)
    if not policy.enabled:
        raise HTTPError(
            404, "not_found",
            f"{policy.script} is disabled by its // @enabled false; remove that line to serve it",
            path=req.path, script=policy.script,
        )
    if policy.cors != "none" and cors.is_preflight(req.method, req.headers):
        return Result(204, cors.preflight_headers(policy.cors, req.headers), b"")
    headers, query, url = req.headers, req.query, req.url
    if policy.token_digest is not None:
        found = auth.credentials(headers, query, url)
        if not auth.accepts(policy.token_digest, found.presented):
            raise unauthorized(policy.script)
        headers, query, url = found.headers, found.query, found.url
    return script.artefact, policy, Invocation(
        req.method, req.path, url, headers, query, ip=req.ip, hops=hops
    )


def _scope(
    tenant: str, method: str, target: str, headers: list[tuple[str, str]], body: bytes
) -> Scope:
    """The ASGI scope of a request made in-process for ``tenant`` (``target``: a path and
    query)."""
    path, _, query = target.partition("#")[0].partition("?")
    pairs = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    if not any(k == b"host" for k, _ in pairs):
        pairs.append((b"host", b"localhost"))
    pairs.append((b"content-length", b"%d" % len(body)))
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": unquote(path), "raw_path": path.encode("latin-1"),
        "query_string": query.encode("latin-1"), "headers": pairs, "client": None,
        "server": None, "wexec.tenant": tenant,
    }


def _hops(headers: dict[str, str]) -> int:
    """The scripts a request already passed through, as its ``x-wexec-hops`` says (a
    client's own value only makes its request stop sooner)."""
    value = headers.get(HOPS_HEADER, "")
    return int(value) if value.isdigit() and len(value) < 6 else 0


_REASONS = {s.value: s.phrase for s in HTTPStatus}


def _dispatched(status: int, head: Any, body: bytes) -> Dispatched:
    """An in-process answer from its raw head (as a server would get it) and whole body."""
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in head]
    headers.append(("content-length", str(len(body))))
    return Dispatched(status, _REASONS.get(status, ""), headers, body, None)


def _script_failed(exc: ScriptError, policy: Policy) -> HTTPError:
    """The answer to a failed run; for a stream that failed mid-way, what its log line says."""
    if isinstance(exc, ScriptTimeout):
        err = timed_out(policy.script, exc.limit_ms or policy.timeout_ms)
    elif isinstance(exc, ScriptMemoryError):
        err = script_failed("memory_limit", exc.name, exc.message, policy.script, exc.line, exc.col)
    else:
        err = script_failed("script_error", exc.name, exc.message, policy.script,
                            exc.line, exc.col, exc.stack)
    err.logs = exc.logs
    return err


def _redactor(policy: Policy, req: ScriptRequest) -> Redactor | None:
    """What hides the script's secrets and the credentials this request carried (its cookies
    among them, wherever the script logs them); None if neither."""
    carried = auth.request_secrets(req.headers, req.query)
    if "cookie" in req.headers:
        carried += cookie_values(req.headers["cookie"])
    return Redactor([*policy.secrets, *carried]) if carried else policy.redactor


def _internal_error(exc: Exception) -> HTTPError:
    return HTTPError(500, "internal_error", f"wexec failed to serve this request: {exc}")


def _answer_error(
    err: HTTPError, policy: Policy | None, req: ScriptRequest, extra: list[tuple[str, str]]
) -> tuple[Result, list[tuple[bytes, bytes]], str]:
    """The JSON answer for `err`, its raw head, and the error its log line names."""
    body = err.body()
    if policy is not None and (redact := _redactor(policy, req)) is not None:
        body = redact(body.decode()).encode()
    return Result(err.status, err.headers, body, err.logs), _trusted(err.headers, extra), err.message


async def _send(send: Send, status: int, head: list[tuple[bytes, bytes]], body: bytes) -> None:
    head.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def _send_stream(
    send: Send, receive: Receive, stream: BodyStream, status: int,
    head: list[tuple[bytes, bytes]], policy: Policy,
) -> tuple[int, str | None]:
    """Send a streamed response as it is produced; returns its size and what cut it short.

    Servers do not all fail a send to a client that went away, so the client's disconnect is
    watched for: it ends the stream, and with it the script's work on this request.
    """
    size = 0
    gone = asyncio.ensure_future(_until_disconnect(receive, stream))
    try:
        await send({"type": "http.response.start", "status": status, "headers": head})
        async for chunk in stream:
            size += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except ScriptError as exc:
        return size, _script_failed(exc, policy).message
    except Exception as exc:  # noqa: BLE001 - each server fails a send its own way
        return size, f"sending the response failed after {size} bytes: {exc!r}"
    finally:
        gone.cancel()
        await stream.aclose()
    if gone.done() and not gone.cancelled():
        return size, f"the client went away after {size} bytes of the streamed response"
    await send({"type": "http.response.body", "body": b""})
    return size, None


async def _until_disconnect(receive: Receive, stream: BodyStream) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    stream.end()


def _trusted(
    headers: list[tuple[str, str]], extra: list[tuple[str, str]] | None = None
) -> list[tuple[bytes, bytes]]:
    """Headers wexec itself made (errors, CORS), which need no checks: already lower-case text
    from the request or from code."""
    pairs = headers + extra if extra else headers
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs]
