"""The baseline: the smallest Starlette app that answers like the wexec hello script.

Served by the same server configuration as wexec, it is the denominator of every ratio that
benches/http_load.py prints: whatever the ASGI server and Starlette cost, wexec pays too.
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


async def hello(_: Request) -> JSONResponse:
    return JSONResponse({"message": "hello"})


_sockets: set[WebSocket] = set()


async def sockets(socket: WebSocket) -> None:
    """What benches/websockets.py measures: echo, and "go" sent to every socket (fan-out)."""
    await socket.accept()
    _sockets.add(socket)
    try:
        while True:
            message = await socket.receive_text()
            if message == "go":
                for other in list(_sockets):
                    await other.send_text("tick")
            else:
                await socket.send_text(message)
    except WebSocketDisconnect:
        pass
    finally:
        _sockets.discard(socket)


app = Starlette(routes=[Route("/hello", hello), WebSocketRoute("/ws", sockets)])


def create_app() -> Starlette:
    """Factory form, the shape `runtime.server.serve` loads (each worker process builds its own)."""
    return app
