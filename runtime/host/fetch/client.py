"""The outbound HTTP client: one pooled aiohttp session per process (per set of address rules),
on the event loop, connecting only to addresses the guard checked.

aiohttp, not httpx: for a small-response proxy workload on this machine (uvloop, 32 concurrent
requests to a local granian upstream, keep-alive) aiohttp made about 4,000-6,000 requests/s
and httpx 450-650. Names are resolved by ``CheckedResolver``, inside the connection attempt:
every address a name resolves to is checked and the socket connects to one of those very
addresses, while TLS still verifies and sends SNI for the name (no DNS-rebinding window). An
address written in the URL is checked before the request (``unit.py``); aiohttp never asks the
resolver about one. Cookies are never kept: the session serves every tenant.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ipaddress
import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from runtime.host import Refused
from runtime.host.fetch.guard import Guard, parse_host


class AddressRefused(OSError):
    """A resolved address the guard refused; aiohttp hands it back as the connection error."""


class CheckedResolver(AbstractResolver):
    """Resolves with the loop's resolver and answers only if every address passes the guard."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        name = parse_host(host)
        found: list[ResolveResult] = []
        for fam, _, proto, _, sockaddr in infos:
            addr = ipaddress.ip_address(sockaddr[0])
            try:
                self.guard.check(name, addr, port)
            except Refused as exc:
                raise AddressRefused(str(exc)) from None
            found.append({"hostname": host, "host": str(addr), "port": port, "family": fam,
                          "proto": proto, "flags": socket.AI_NUMERICHOST})
        if not found:
            raise OSError(f"{host} resolves to no address")
        return found

    async def close(self) -> None:
        return None


class Client:
    """The session for one guard, made on first use on the running loop."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop the session is bound to

    def session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._loop is not loop:
            self.drop()
            self._loop = loop
            connector = aiohttp.TCPConnector(
                resolver=CheckedResolver(self.guard), use_dns_cache=False, limit=0,
                limit_per_host=256, enable_cleanup_closed=True,
            )
            session = self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None), auto_decompress=True,
            )
        return session

    def drop(self) -> None:
        """Let the session go without its loop (it may have ended: ``wexec run`` runs each
        request on a loop of its own): its connections are closed, unawaited."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            connector = session.connector
            session.detach()
            if connector is not None:  # close()'s synchronous half: there is no loop to await on
                with contextlib.suppress(Exception):
                    connector._close(abort_ssl=True)

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


async def close_clients() -> None:
    """Close every client's session, on the loop that used them (the server's shutdown)."""
    await asyncio.gather(*(c.aclose() for c in _clients.values()), return_exceptions=True)


def _drop_clients() -> None:
    for client in _clients.values():
        client.drop()


atexit.register(_drop_clients)
_clients: dict[Guard, Client] = {}


def client_for(guard: Guard) -> Client:
    """The process's client for ``guard`` (one in a server: its settings make one guard)."""
    client = _clients.get(guard)
    if client is None:
        client = _clients[guard] = Client(guard)
    return client


def connection_refusal(exc: BaseException) -> Refused | None:
    """The guard's refusal inside an aiohttp connection error, as the script should see it."""
    inner: Any = getattr(exc, "os_error", None) or exc.__cause__
    if isinstance(inner, AddressRefused):
        return Refused(str(inner))
    return None
