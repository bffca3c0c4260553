"""``fetch`` for scripts: the host half of ``guest/prelude/host/fetch.js``.

One op, ``fetch.request``, makes one fetch: its redirects, its address checks (``guard.py``),
its limits, and the response's head. The head comes back with the body inline when it is
small and already known to be (a ``Content-Length`` of at most 64 KiB, or a body-less answer);
any other body is a host stream (``runtime/host/streams.py``) the script reads chunk by chunk,
so a response is never held whole by the host. A relative URL (``/echo``) is the same tenant's
route, answered in-process by the gateway (``services.dispatch``: token, CORS and limits apply,
no socket); every request a fetch makes carries the hop count (``x-wexec-hops``), and the
gateway answers 508 past ``MAX_HOPS``, so a loop of scripts fetching each other stops.

Deny by default where it matters: every script may fetch public addresses; private ones need
the operator's ``WEXEC_FETCH_ALLOW_HOSTS``; a tenant's list (``WEXEC_TENANT_FETCH_HOSTS``) and a
script's ``// @allow-hosts`` narrow that and never widen it.
"""

from __future__ import annotations

import asyncio
import functools
import re
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from multidict import CIMultiDict
from yarl import URL

from runtime.host import HOST_OUT_BYTES, Caller, HostError, OpContext, Refused, Unit, running
from runtime.host.fetch import HOPS_HEADER
from runtime.host.fetch.client import client_for, connection_refusal
from runtime.host.fetch.guard import (
    BadHost,
    Guard,
    HostEntry,
    allowed_by,
    parse_host,
    parse_hosts,
    shown,
)
from runtime.host.fetch.settings import FetchSettings
from runtime.host.streams import CHUNK_BYTES, open_stream
from runtime.observe import tracing

if TYPE_CHECKING:
    from runtime.compiler.magic import MagicComments
    from runtime.config import Settings
    from runtime.http.gateway import Dispatched

MAX_REDIRECTS = 20
INLINE_BYTES = CHUNK_BYTES
"""A body known to be at most this large comes back with the head, saving the script a read."""
_NO_TYPE = ("Content-Type",)
_ENCODED = frozenset({"content-encoding", "content-length"})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NORMALIZED = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"})  # Fetch's list
FORBIDDEN_METHODS = frozenset({"CONNECT", "TRACE", "TRACK"})
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_GUEST_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")
_GUEST_VALUE = re.compile(r"(?:[^\0\t\n\r \u0100-\U0010ffff](?:[^\0\n\r\u0100-\U0010ffff]*[^\0\t\n\r \u0100-\U0010ffff])?)?")
"""A header the guest's ``Headers`` would keep as it is (``guest/prelude/lib/headers.js``):
a lower-case name, a value without NUL, CR, LF, edge whitespace or a character past U+00FF."""


@dataclass(frozen=True, slots=True)
class FetchGrant:
    """What one script version may fetch, and within which limits."""

    guard: Guard
    hosts: tuple[HostEntry, ...] | None  # the only targets it may reach; None: any the guard allows
    narrowed_by: str  # what set ``hosts``, for a refusal to name
    max_subrequests: int
    max_bytes: int


def configure(settings: Settings, tenant: str) -> FetchGrant:
    assert isinstance(settings, FetchSettings)
    listed = settings.tenant_fetch_hosts.get(tenant)
    return FetchGrant(
        Guard(parse_hosts(settings.fetch_allow_hosts), settings.host, settings.port),
        parse_hosts(listed) if listed is not None else None,
        f'WEXEC_TENANT_FETCH_HOSTS["{tenant}"]',
        settings.fetch_max_subrequests,
        settings.fetch_max_response_bytes,
    )


def grant(configured: FetchGrant, magic: MagicComments) -> FetchGrant:
    """``// @allow-hosts`` narrows the tenant's list: an entry outside it is dropped."""
    if not magic.allow_hosts:
        return configured
    wanted = parse_hosts(list(magic.allow_hosts))
    if configured.hosts is None:
        kept = wanted
    else:
        kept = tuple(
            HostEntry(w.host, w.port if w.port is not None else t.port)
            for w in wanted for t in configured.hosts
            if t.host == w.host and (t.port is None or t.port == w.port or w.port is None)
        )
    return FetchGrant(configured.guard, kept, "// @allow-hosts", configured.max_subrequests,
                      configured.max_bytes)


class FetchTimeout(HostError):
    js_name = "TimeoutError"


@dataclass(slots=True)
class FetchState:
    """One request's fetches so far."""

    subrequests: int = 0

    def count(self, limit: int, target: str) -> None:
        if self.subrequests >= limit:
            raise Refused(
                f"fetch to {target} refused: this request already made {self.subrequests} "
                f"fetches, the cap (WEXEC_FETCH_MAX_SUBREQUESTS={limit})"
            )
        self.subrequests += 1


@dataclass(slots=True)
class Head:
    """A response's status line and headers, and its body: inline, a host stream, or none."""

    status: int
    status_text: str
    headers: list[tuple[str, str]]
    url: str
    redirected: bool = False
    body: bytes = b""
    stream: int | None = None

    def encode(self) -> bytes:
        """The op's answer: a little-endian u32 length, the head as JSON, the inline body.

        ``checked`` says every header is one the guest's ``Headers`` keeps as it is, so
        ``fetch()`` takes them without checking each again (a guest check costs far more).
        """
        name, value = _GUEST_NAME.fullmatch, _GUEST_VALUE.fullmatch
        checked = all(name(k) and value(v) for k, v in self.headers)
        head = orjson.dumps({
            "status": self.status, "statusText": self.status_text, "headers": self.headers,
            "url": self.url, "redirected": self.redirected, "stream": self.stream,
            "checked": checked,
        })
        return struct.pack("<I", len(head)) + head + self.body


async def request(args: dict[str, Any], ctx: OpContext) -> bytes:
    """``fetch.request {"url", "method", "headers": [[name, value]...], "body"?, "redirect"}``:
    the response head (and a small body) as ``Head.encode`` lays them out. ``redirect`` is
    ``follow`` (default), ``manual`` (a 3xx is the answer) or ``error``. Every refusal is a
    TypeError naming the rule, the address and the setting that opens it."""
    grant_: FetchGrant = ctx.grants["fetch"]
    state: FetchState = ctx.state["fetch"]
    url = args.get("url")
    if not isinstance(url, str) or not url:
        raise Refused("fetch needs a URL")
    method = _method(args.get("method", "GET"))
    headers = _headers(args.get("headers") or [])
    headers.popall(HOPS_HEADER, None)
    headers[HOPS_HEADER] = str(ctx.hops + 1)
    parent = tracing.traceparent()  # the op's span, when tracing is on: the trace goes on upstream
    if parent is not None and "traceparent" not in headers:
        headers["traceparent"] = parent
    body = args.get("body")
    if body is not None and not isinstance(body, bytes):
        raise Refused("fetch's body reaches the host as bytes")
    if method in ("GET", "HEAD") and body:
        raise Refused(f"fetch refused: a {method} request cannot have a body")
    redirect = args.get("redirect", "follow")
    if redirect not in ("follow", "manual", "error"):
        raise Refused(f"fetch's redirect must be follow, manual or error, not {redirect!r}")
    remaining = None if ctx.deadline is None else max(0.0, ctx.deadline - time.monotonic())
    try:
        async with asyncio.timeout(remaining):
            if "ticket" in args:  # begun inside the crossing (``local``), counted there
                answer = await ctx.services.claim(int(args["ticket"]))
                head = _open(ctx, answer, url, headers)
            elif url.startswith("/") and not url.startswith("//"):
                state.count(grant_.max_subrequests, url)
                head = await _compose(ctx, method, url, headers, body or b"")
            else:
                head = await _fetch(ctx, grant_, state, method, url, headers, body, redirect)
    except TimeoutError:
        raise FetchTimeout(
            f"fetch to {url} timed out: the script's own time limit ran out first"
        ) from None
    return head.encode()


def _method(value: Any) -> str:
    method = str(value)
    if not method or not set(method) <= _TOKEN:
        raise Refused(f"{method!r} is not a valid HTTP method")
    upper = method.upper()
    if upper in FORBIDDEN_METHODS:
        raise Refused(f"fetch refused: the {upper} method is forbidden")
    return upper if upper in _NORMALIZED else method


def _headers(pairs: Any) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    if not isinstance(pairs, list):
        raise Refused("fetch's headers reach the host as [name, value] pairs")
    for pair in pairs:
        if not isinstance(pair, list) or len(pair) != 2:
            raise Refused("fetch's headers reach the host as [name, value] pairs")
        name, value = str(pair[0]), str(pair[1]).strip(" \t")
        if not name or not set(name) <= _TOKEN:
            raise Refused(f"{name!r} is not a valid header name")
        if any(c in value for c in "\r\n\0") or not value.isascii() and _not_latin1(value):
            raise Refused(
                f"the value of header {name!r} holds a line break, a NUL or a character past "
                "U+00FF"
            )
        headers.add(name, value)
    return headers


def _not_latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return True
    return False


async def _fetch(
    ctx: OpContext, grant_: FetchGrant, state: FetchState, method: str, url: str,
    headers: CIMultiDict[str], body: bytes | None, redirect: str,
) -> Head:
    session = client_for(grant_.guard).session()
    target = _checked(grant_, url)
    redirected = False
    for _ in range(MAX_REDIRECTS + 1):
        state.count(grant_.max_subrequests, str(target))
        try:
            resp = await session.request(
                method, target, headers=headers, data=body, allow_redirects=False,
                skip_auto_headers=_NO_TYPE,  # a body's type is the script's to say, or none
            )
        except aiohttp.ClientError as exc:
            refused = connection_refusal(exc)
            if refused is not None:
                raise refused from None
            raise Refused(f"fetch to {target} failed: {_reason(exc)}") from None
        if resp.status not in REDIRECTS or redirect == "manual" or "location" not in resp.headers:
            return await _head(ctx, grant_, resp, str(target), redirected)
        resp.release()
        if redirect == "error":
            raise Refused(f"fetch to {target} refused: it redirects, and redirect is 'error'")
        location = target.join(URL(resp.headers["location"], encoded=True))
        nxt = _checked(grant_, str(location), redirected_from=str(target))
        if resp.status == 303 and method != "HEAD" or resp.status in (301, 302) and method == "POST":
            method, body = "GET", None
            for name in ("content-type", "content-length", "content-encoding", "content-language"):
                headers.popall(name, None)
        if nxt.origin() != target.origin():
            headers.popall("authorization", None)
        target, redirected = nxt, True
    raise Refused(f"fetch to {url} refused: more than {MAX_REDIRECTS} redirects")


def _checked(grant_: FetchGrant, url: str, redirected_from: str | None = None) -> URL:
    """``url`` as the host parses it, with an address written in any spelling put canonically,
    and refused unless its scheme, host, port and (if it is an address) its address pass."""
    try:
        return _target(grant_, url)
    except Refused as exc:
        if redirected_from is None:
            raise
        raise Refused(f"{exc} (redirected from {redirected_from})") from None


def check_url(grant_: FetchGrant, url: str, redirected_from: str | None = None) -> URL:
    """``_checked`` for the host's own fetches made for a tenant under its grant (sdk/import
    reading an OpenAPI document): the same rules as a script's fetch."""
    return _checked(grant_, url, redirected_from)


@functools.lru_cache(maxsize=1024)
def _target(grant_: FetchGrant, url: str) -> URL:
    """``_checked`` for one grant and URL: a pure function of both, so the URLs a script fetches
    again and again are parsed and checked once (a refusal is not kept)."""
    try:
        parsed = URL(url)
    except ValueError as exc:
        raise Refused(f"fetch to {url!r} refused: not a valid URL ({exc})") from None
    if parsed.scheme not in ("http", "https"):
        raise Refused(f"fetch to {url} refused: only http: and https: URLs may be fetched")
    raw = parsed.raw_host
    if not raw:
        raise Refused(f"fetch to {url} refused: the URL names no host")
    try:
        host = parse_host(raw)
    except BadHost as exc:
        raise Refused(f"fetch to {url} refused: {exc}") from None
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if not allowed_by(grant_.hosts, host, port):
        listed = ", ".join(str(e) for e in grant_.hosts or ()) or "none"
        raise Refused(
            f"fetch to {shown(host, port)} refused: not among the hosts this script may reach "
            f"({grant_.narrowed_by}: {listed})"
        )
    if not isinstance(host, str):
        grant_.guard.check(host, host, port)
        parsed = parsed.with_host(str(host))
    return parsed


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


async def _head(
    ctx: OpContext, grant_: FetchGrant, resp: aiohttp.ClientResponse, url: str, redirected: bool
) -> Head:
    headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in resp.raw_headers]
    length = resp.content_length
    if resp.headers.get("content-encoding", "identity").lower() != "identity":
        # the client decodes the body, so it is no longer what these two headers describe
        headers = [(k, v) for k, v in headers if k not in _ENCODED]
        length = None  # and its decoded size is known only once read: stream it
    head = Head(resp.status, resp.reason or "", headers, url, redirected)
    if length is not None and length > grant_.max_bytes:
        resp.close()
        raise Refused(
            f"fetch to {url} refused: its body of {length} bytes is past the cap of "
            f"{grant_.max_bytes} (WEXEC_FETCH_MAX_RESPONSE_BYTES)"
        )
    bodiless = resp.method == "HEAD" or resp.status in (204, 304)
    if bodiless or (length is not None and length <= INLINE_BYTES):
        try:
            head.body = b"" if bodiless else await resp.read()
        except aiohttp.ClientError as exc:
            raise Refused(f"fetch to {url} failed reading its body: {_reason(exc)}") from None
        finally:
            resp.release()
        return head
    head.stream = open_stream(ctx, _Body(resp, url, grant_.max_bytes))
    return head


class _Body:
    """A response body as it arrives, a host stream's source. Closing it before its end closes
    the connection, so the upstream sees the request cancelled; a class, not a generator, so
    that happens even if the script never read it (a generator never started runs no
    ``finally``)."""

    def __init__(self, resp: aiohttp.ClientResponse, url: str, cap: int) -> None:
        self.resp, self.url, self.cap = resp, url, cap
        self.got = 0

    def __aiter__(self) -> _Body:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self.resp.content.readany()
        except aiohttp.ClientError as exc:
            raise HostError(f"reading the body of {self.url} failed: {_reason(exc)}") from None
        if not chunk:
            self.resp.release()  # read to its end: the connection goes back to the pool
            raise StopAsyncIteration
        self.got += len(chunk)
        if self.got > self.cap:
            raise HostError(
                f"the body of {self.url} passed the cap of {self.cap} bytes "
                "(WEXEC_FETCH_MAX_RESPONSE_BYTES)"
            )
        return chunk

    async def aclose(self) -> None:
        if not self.resp.closed:
            self.resp.close()


async def _compose(
    ctx: OpContext, method: str, path: str, headers: CIMultiDict[str], body: bytes
) -> Head:
    """A relative URL: the same tenant's route, run in-process through the gateway."""
    dispatch = ctx.services.dispatch
    if dispatch is None:
        raise Refused(
            f"fetch to {path} refused: a relative URL calls another script of this tenant, "
            "which needs the HTTP server (wexec serve); give an absolute URL here"
        )
    return _open(ctx, await dispatch(ctx.tenant, method, path, list(headers.items()), body),
                 path, headers)


def _open(ctx: OpContext, answer: Dispatched, path: str, headers: Mapping[str, str]) -> Head:
    """An in-process answer as a fetch's head, its body inline or a host stream."""
    host = headers.get("host", "localhost")
    head = Head(answer.status, answer.reason, answer.headers, f"http://{host}{path}")
    if answer.rest is None:
        head.body = answer.body
    else:
        head.stream = open_stream(ctx, answer.rest)
    return head


def local(data: bytes, caller: Caller) -> bytes:
    """``fetch.local rid\\nmethod\\nurl\\nheaders\\nbody`` (headers: JSON ``[name, value]``
    pairs, or nothing): a relative fetch of request ``rid`` answered inside the crossing that
    makes it, when the script it calls can take it there (``Gateway.inline``): no event loop
    turn, no thread hop, no second crossing for the caller. Answers ``=`` and the answer as
    ``request`` encodes it; ``t`` and a ticket, which the ``fetch.request`` op takes
    (``{"ticket"}``) for an answer that is larger or comes later; or nothing, before anything
    ran: the fetch is made as that op makes it, which also says what is wrong with one that is
    refused."""
    driver = running.driver
    try:
        rid, method, target, pairs, body = data.split(b"\n", 4)
        ctx = driver.context_of(int(rid)) if driver is not None else None
        url, method_ = target.decode(), method.decode()
    except ValueError:  # not five parts, not a number, not UTF-8: a raw call's own
        return b""
    if (ctx is None or ctx.services.inline is None or not url.startswith("/")
            or url.startswith("//") or not url.isprintable()):
        return b""
    grant_: FetchGrant = ctx.grants["fetch"]
    state: FetchState = ctx.state.get("fetch") or ctx.state.setdefault("fetch", FetchState())
    if state.subrequests >= grant_.max_subrequests:
        return b""
    headers: dict[str, str] = {}
    try:
        method_ = method_ if method_ in _NORMALIZED else _method(method_)
        for name, value in _headers(orjson.loads(pairs)).items() if pairs else ():
            name = name.lower()
            seen = headers.get(name)
            headers[name] = value if seen is None else f"{seen}, {value}"
    except (Refused, ValueError):
        return b""
    if method_ in ("GET", "HEAD") and body:
        return b""
    headers[HOPS_HEADER] = str(ctx.hops + 1)
    answered = ctx.services.inline(
        ctx.tenant, method_, url, headers, body, ctx.deadline,
        lambda answer: b"=" + _open(ctx, answer, url, headers).encode(), HOST_OUT_BYTES,
    )
    if answered is None:
        return b""
    state.subrequests += 1
    return b"t%d" % answered if isinstance(answered, int) else answered


UNIT = Unit(
    name="fetch",
    granted_by="every script may fetch public hosts; WEXEC_FETCH_ALLOW_HOSTS opens others",
    ops={"request": request},
    bound_calls={"local": local},
    settings=FetchSettings,
    configure=configure,
    grant=grant,
    request_state=FetchState,
)
