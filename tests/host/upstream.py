"""A small real HTTP server for fetch tests and benches, on a loop of its own in a thread: it
answers, waits, streams, redirects, and records what it saw (a client that went away)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import web

from tests.support import free_port


class Upstream:
    """Routes: /hello, /echo (method, headers, body as JSON), /slow?ms=, /drip (a first chunk,
    then the rest once ``release`` is set), /hang (never answers), /redirect?to=, /big?n=,
    /gzip (a compressed body)."""

    def __init__(self) -> None:
        self.ports = (free_port(), free_port())  # the second stays closed to scripts
        self.release = threading.Event()
        self.disconnected = threading.Event()  # a /hang or /drip request was cancelled
        self.finished: list[str] = []
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.ports[0]}"

    @property
    def closed_base(self) -> str:
        return f"http://127.0.0.1:{self.ports[1]}"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/hello", self.hello)
        app.router.add_route("*", "/echo", self.echo)
        app.router.add_get("/slow", self.slow)
        app.router.add_get("/drip", self.drip)
        app.router.add_get("/hang", self.hang)
        app.router.add_get("/redirect", self.redirect)
        app.router.add_get("/big", self.big)
        app.router.add_get("/gzip", self.gzip)
        return app

    async def hello(self, request: web.Request) -> web.Response:
        return web.Response(text="hello from upstream")

    async def echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({
            "method": request.method, "headers": dict(request.headers),
            "body": body.decode("latin-1"), "query": request.query_string,
        })

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(int(request.query.get("ms", "200")) / 1000)
        return web.Response(text="slow")

    async def drip(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        await resp.write(b"first\n")
        try:
            while not self.release.is_set():
                await asyncio.sleep(0.01)
            await resp.write(b"last\n")
            await resp.write_eof()
        except (asyncio.CancelledError, ConnectionError):
            self.disconnected.set()
            raise
        self.finished.append("drip")
        return resp

    async def hang(self, request: web.Request) -> web.Response:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.disconnected.set()
            raise
        return web.Response(text="late")

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def big(self, request: web.Request) -> web.Response:
        return web.Response(body=b"x" * int(request.query.get("n", "1000")))

    async def gzip(self, request: web.Request) -> web.Response:
        resp = web.Response(text="zipped " * 1000)
        resp.enable_compression(web.ContentCoding.gzip)
        return resp

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app(), handler_cancellation=True)
        await self._runner.setup()
        for port in self.ports:
            await web.TCPSite(self._runner, "127.0.0.1", port).start()

    async def _stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@contextmanager
def upstream() -> Iterator[Upstream]:
    """An ``Upstream`` serving on two local ports until the block ends."""
    up = Upstream()
    thread = threading.Thread(target=up._loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(up._start(), up._loop).result(10)
    try:
        yield up
    finally:
        asyncio.run_coroutine_threadsafe(up._stop(), up._loop).result(10)
        up._loop.call_soon_threadsafe(up._loop.stop)
        thread.join(5)
