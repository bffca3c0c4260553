"""The proxy baseline: the smallest Starlette app that forwards GET /hello to an upstream with
one pooled client (httpx, as issue 12 names it, or aiohttp, the client wexec's fetch uses),
served through `runtime.server.serve` like apps/bare.py.

    python benches/apps/proxy.py SERVER PORT UPSTREAM_URL [httpx|aiohttp]

benches/capabilities.py compares a wexec worker script doing the same with `fetch`.
"""

import os
import sys
from pathlib import Path

import aiohttp
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

UPSTREAM = os.environ.get("WEXEC_BENCH_UPSTREAM", "")
CLIENT = os.environ.get("WEXEC_BENCH_CLIENT", "httpx")
client: httpx.AsyncClient | None = None
session: aiohttp.ClientSession | None = None


async def hello(_: Request) -> Response:
    global client, session
    if CLIENT == "aiohttp":
        if session is None:  # made on the server's loop, in its worker process
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        async with session.get(UPSTREAM) as resp:
            return Response(await resp.read(), resp.status, media_type=resp.content_type)
    if client is None:
        client = httpx.AsyncClient(limits=httpx.Limits(max_connections=256))
    answer = await client.get(UPSTREAM)
    return Response(answer.content, answer.status_code,
                    media_type=answer.headers.get("content-type"))


app = Starlette(routes=[Route("/hello", hello)])


def create_app() -> Starlette:
    return app


if __name__ == "__main__":
    sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]
    from runtime.config import Settings
    from runtime.server import serve

    server, port, os.environ["WEXEC_BENCH_UPSTREAM"] = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.environ["WEXEC_BENCH_CLIENT"] = sys.argv[4] if len(sys.argv) > 4 else "httpx"
    serve(Settings(server=server, host="127.0.0.1", port=port), "proxy:create_app")
