"""The baseline: the smallest Starlette app that answers like the wexec hello script.

Served by the same server configuration as wexec, it is the denominator of every ratio that
benches/http_load.py prints: whatever the ASGI server and Starlette cost, wexec pays too.
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(_: Request) -> JSONResponse:
    return JSONResponse({"message": "hello"})


app = Starlette(routes=[Route("/hello", hello)])


def create_app() -> Starlette:
    """Factory form, the shape `runtime.server.serve` loads (each worker process builds its own)."""
    return app
