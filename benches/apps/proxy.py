"""The proxy baseline: the smallest Starlette app that forwards GET /hello to an upstream with
one pooled httpx client, served through `runtime.server.serve` like apps/bare.py.

    python benches/apps/proxy.py SERVER PORT UPSTREAM_URL

benches/capabilities.py compares a wexec worker script doing the same with `fetch`.
"""

import os
import sys
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

UPSTREAM = os.environ.get("WEXEC_BENCH_UPSTREAM", "")
client: httpx.AsyncClient | None = None


async def hello(_: Request) -> Response:
    global client
    if client is None:  # made on the server's loop, in its worker process
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
    serve(Settings(server=server, host="127.0.0.1", port=port), "proxy:create_app")
