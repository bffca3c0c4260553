"""WebSockets of worker scripts, over a real client against `wexec serve` on each server."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support import eventually, running_server, write_scripts

SERVERS = ["granian", "uvicorn", "hypercorn"]

SOCKETS = """// @mode worker
// @websocket
// @timeout 1500
const keep = [];
ws.open = (socket) => {
  socket.data.name = socket.metadata.query.name || 'anon';
  socket.send('hello ' + socket.data.name);
};
ws.message = (socket, data) => {
  if (typeof data !== 'string') {
    socket.send(data.reverse());
    return;
  }
  const [verb, arg] = data.split(' ');
  if (verb === 'throw') throw new Error('boom');
  if (verb === 'spin') while (true) {}
  if (verb === 'hang') return new Promise(() => {});
  if (verb === 'trap') while (true) { try { keep.push(new Array(1e6).fill(1)); } catch {} }
  if (verb === 'flood') {
    const chunk = 'x'.repeat(64 * 1024);
    for (let i = 0; i < 100; i++) socket.send(chunk);
    return;
  }
  if (verb === 'join') { socket.subscribe(arg); socket.send('joined ' + arg); return; }
  if (verb === 'pub') { socket.publish('room', socket.data.name + ': ' + arg); return; }
  if (verb === 'all') { ws.broadcast('room', 'all: ' + arg); return; }
  if (verb === 'count') { socket.send('count ' + ws.connections().length); return; }
  if (verb === 'later') return new Promise((ok) => setTimeout(ok, 20)).then(() => socket.send('later'));
  if (verb === 'bye') { socket.close(4000, 'asked'); return; }
  socket.send('echo ' + data);
};
ws.close = (socket, code) => { closes.push(code); };
const closes = [];
module.exports = (req) => ({ http: true, closes });
"""

EXPORTED = """// @mode worker
// @websocket
// @token s3cret
// @cors https://good.example
module.exports = {
  fetch(req, res) { return { http: 'exported' }; },
  websocket: {
    open(socket) { socket.send('open'); },
    message(socket, data) { socket.send(typeof data + ':' + data); },
  },
};
"""

PLAIN = "// @mode worker\nmodule.exports = () => ({ plain: true });\n"


@pytest.fixture(scope="module", params=SERVERS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("tenants")
    for tenant in ("a/1", "b/1"):
        write_scripts(root / tenant, {"sockets.js": SOCKETS, "exported.js": EXPORTED,
                                      "plain.js": PLAIN})
    data = tmp_path_factory.mktemp("data")
    env = {"WEXEC_TENANTS_ROOT": str(root), "WEXEC_RESTART_ON_CRASH": "false",
           "WEXEC_WS_MAX_MESSAGE_BYTES": str(64 * 1024),
           "WEXEC_WS_SEND_QUEUE_BYTES": str(2 << 20), "WEXEC_MEMORY_LIMIT": str(32 << 20)}
    with running_server(["--server", request.param, "--data", str(data)], env=env) as base:
        yield base


def _ws(base: str, path: str, tenant: str = "a-1", **kwargs: Any) -> Any:
    port = int(base.rsplit(":", 1)[1])
    return connect(f"ws://{tenant}.localhost:{port}{path}", host="127.0.0.1", port=port,
                   open_timeout=10, **kwargs)


async def _closed(conn: ClientConnection) -> int | None:
    """The close code the server sent, once the connection ends (reading what is left)."""
    try:
        while True:
            await asyncio.wait_for(conn.recv(), 10)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_echo_in_order_with_open_and_close(server: str, request: pytest.FixtureRequest) -> None:
    async def go() -> None:
        async with _ws(server, "/sockets?name=ann") as c:
            assert await c.recv() == "hello ann"
            for i in range(20):
                await c.send(f"m{i}")
            assert [await c.recv() for _ in range(20)] == [f"echo m{i}" for i in range(20)]
            # a connection's events run one at a time: the next waits for a handler's promise
            await c.send("later")
            await c.send("after")
            assert [await c.recv() for _ in range(2)] == ["later", "echo after"]
            await c.send(bytes([1, 2, 3]))
            assert await c.recv() == bytes([3, 2, 1])
        async with _ws(server, "/sockets") as c:
            assert await c.recv() == "hello anon"
            await c.send("bye")
            assert await _closed(c) == 4000
    run(go())
    closes = httpx.get(server + "/sockets", headers={"host": "a-1.localhost"}).json()["closes"]
    # hypercorn hands the app 1006 for any close the client began, whatever its code
    client_close = 1006 if request.node.callspec.params["server"] == "hypercorn" else 1000
    assert closes[:2] == [client_close, 4000]


def test_rooms_broadcast_and_tenants_apart(server: str) -> None:
    async def go() -> None:
        async with _ws(server, "/sockets?name=a") as a, _ws(server, "/sockets?name=b") as b, \
                _ws(server, "/sockets?name=c") as c, _ws(server, "/sockets?name=x", "b-1") as x:
            for conn in (a, b, c, x):
                await conn.recv()
                await conn.send("join room")
                assert await conn.recv() == "joined room"
            await a.send("pub hi")
            assert await b.recv() == "a: hi"
            assert await c.recv() == "a: hi"
            await b.send("all yo")
            assert [await a.recv(), await b.recv(), await c.recv()] == ["all: yo"] * 3
            await c.send("count")
            assert await c.recv() == "count 3"
            await x.send("count")
            assert await x.recv() == "count 1"  # the other tenant's room of the same name
    run(go())


def test_token_origin_and_export_form(server: str) -> None:
    async def go() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with _ws(server, "/exported"):
                pass
        assert refused.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as refused:
            async with _ws(server, "/exported?token=s3cret", origin="https://evil.example"):
                pass
        assert refused.value.response.status_code == 403
        async with _ws(server, "/exported?token=s3cret", origin="https://good.example") as c:
            assert await c.recv() == "open"
            await c.send(b"\x01")
            assert await c.recv() == "object:1"
        async with _ws(server, "/exported", subprotocols=["chat", "wexec.token.s3cret"]) as c:
            assert c.subprotocol == "chat"
            assert await c.recv() == "open"
    run(go())
    answer = httpx.get(server + "/exported?token=s3cret", headers={"host": "a-1.localhost"})
    assert answer.json() == {"http": "exported"}


def test_script_without_websocket_refuses_and_http_still_works(server: str) -> None:
    async def go() -> None:
        with pytest.raises(InvalidStatus):
            async with _ws(server, "/plain"):
                pass
    run(go())
    assert httpx.get(server + "/plain", headers={"host": "a-1.localhost"}).json() == {"plain": True}


def test_limits_and_failures_close_with_their_codes(server: str) -> None:
    async def go() -> None:
        async with _ws(server, "/sockets") as other:
            await other.recv()
            async with _ws(server, "/sockets", max_size=None) as c:
                await c.recv()
                await c.send("x" * (64 * 1024 + 10))
                assert await _closed(c) == 1009
            async with _ws(server, "/sockets") as c:
                await c.recv()
                await c.send("throw")
                assert await _closed(c) == 1011
            async with _ws(server, "/sockets") as c:
                await c.recv()
                await c.send("spin")
                assert await _closed(c) == 1011
            async with _ws(server, "/sockets") as c:  # waits past its @timeout: the host stops it
                await c.recv()
                await c.send("hang")
                assert await _closed(c) == 1011
            async with _ws(server, "/sockets", max_size=None) as c:
                await c.recv()
                await c.send("flood")
                assert await _closed(c) == 1008
            await other.send("still")  # the other clients keep working
            assert await other.recv() == "echo still"
            async with _ws(server, "/sockets") as c:
                await c.recv()
                await c.send("trap")
                assert await _closed(c) == 1012
            assert await _closed(other) == 1012  # every socket of the worker that stopped
        async with _ws(server, "/sockets") as c:  # a new worker serves the reconnection
            assert await c.recv() == "hello anon"
    run(go())


def test_idle_connection_closed_after_its_timeout(tmp_path: Path) -> None:
    """A message restarts the idle clock; a client that then sends nothing is closed with 1001
    once WEXEC_WS_IDLE_TIMEOUT_MS has passed, not before."""
    write_scripts(tmp_path / "scripts", {"sockets.js": SOCKETS})
    env = {"WEXEC_WS_IDLE_TIMEOUT_MS": "1000", "WEXEC_RESTART_ON_CRASH": "false"}
    args = ["--scripts", str(tmp_path / "scripts"), "--data", str(tmp_path / "data")]

    async def go(base: str) -> None:
        port = int(base.rsplit(":", 1)[1])
        async with connect(f"ws://127.0.0.1:{port}/sockets", open_timeout=10) as c:
            assert await c.recv() == "hello anon"
            await asyncio.sleep(0.7)
            await c.send("still")
            assert await c.recv() == "echo still"
            quiet_since = asyncio.get_running_loop().time()
            assert await _closed(c) == 1001
            assert asyncio.get_running_loop().time() - quiet_since >= 0.9

    with running_server(args, env=env) as base:
        run(go(base))


@pytest.fixture(scope="module", params=SERVERS)
def examples(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[str]:
    """`wexec serve` on the repository's own scripts/."""
    data = tmp_path_factory.mktemp("data")
    with running_server(["--server", request.param, "--data", str(data)],
                        env={"WEXEC_RESTART_ON_CRASH": "false"}) as base:
        yield base


def test_chat_and_live_counter_examples(examples: str) -> None:
    port = int(examples.rsplit(":", 1)[1])

    def at(path: str) -> Any:
        return connect(f"ws://127.0.0.1:{port}{path}", open_timeout=10)

    async def go() -> None:
        async with httpx.AsyncClient(base_url=examples, timeout=10) as http:
            await chat(http)
            async with at("/live") as page:
                start = int(await page.recv())
                assert (await http.post("/live")).json()["count"] == start + 1
                assert int(await page.recv()) == start + 1
            assert "new WebSocket" in (await http.get("/chat-page")).text

    async def chat(http: httpx.AsyncClient) -> None:
        async with contextlib.AsyncExitStack() as stack:
            # each joins once the one before is in: the order of joins is then the test's
            ann = await stack.enter_async_context(at("/chat?room=r1&name=ann"))
            assert json.loads(await ann.recv())["name"] == "ann"
            bob = await stack.enter_async_context(at("/chat?room=r1&name=bob"))
            await bob.recv()
            assert json.loads(await ann.recv()) == {"type": "join", "name": "bob", "room": "r1"}
            eve = await stack.enter_async_context(at("/chat?room=r2&name=eve"))
            await eve.recv()
            rooms = (await http.get("/chat")).json()["rooms"]
            assert sorted(rooms["r1"]) == ["ann", "bob"] and rooms["r2"] == ["eve"]
            await ann.send("hi")
            for conn in (ann, bob):
                said = json.loads(await conn.recv())
                assert (said["type"], said["name"], said["text"]) == ("message", "ann", "hi")
            await eve.send("alone")  # another room: ann and bob do not hear it
            assert json.loads(await eve.recv())["text"] == "alone"

    run(go())


def test_a_handlers_console_output_and_failure_reach_the_request_log(tmp_path: Path) -> None:
    """What a handler prints goes to the request log as a WS line of its connection, and so
    does a handler's failure; a handler that prints nothing adds no line."""
    script = ("// @mode worker\n// @websocket\nmodule.exports = () => ({ http: true });\n"
              "ws.message = (socket, data) => {\n"
              "  if (data === 'quiet') return socket.send('ok');\n"
              "  if (data === 'throw') throw new Error('ws-failure-marker');\n"
              "  console.log('ws-said', data);\n  socket.send('logged');\n};\n")
    write_scripts(tmp_path / "scripts", {"talk.js": script})
    args = ["--scripts", str(tmp_path / "scripts"), "--data", str(tmp_path / "data")]

    async def go(base: str) -> None:
        port = int(base.rsplit(":", 1)[1])
        async with connect(f"ws://127.0.0.1:{port}/talk", open_timeout=10) as c:
            for message in ("quiet", "ws-log-marker", "throw"):
                await c.send(message)
            assert [await c.recv() for _ in range(2)] == ["ok", "logged"]
            assert await _closed(c) == 1011

    def search(base: str, query: str) -> list[dict[str, Any]]:
        found = httpx.post(f"{base}/api/v1/exec/logs/search", json={"query": query}, timeout=10)
        return [m["entry"] for m in found.json()["matches"]]

    with running_server(args) as base:
        run(go(base))
        eventually(lambda: bool(search(base, "ws-failure-marker")))
        said = search(base, "ws-log-marker")
        assert len(said) == 1 and said[0]["method"] == "WS" and said[0]["path"] == "/talk"
        assert said[0]["console"][0]["msg"] == "ws-said ws-log-marker"
        failed = search(base, "ws-failure-marker")[0]
        assert failed["id"] == said[0]["id"]  # the connection's id
        assert "ws.message: Error: ws-failure-marker" in failed["error"]
        assert search(base, "quiet") == []


async def test_a_closed_connection_is_freed_without_the_cycle_collector(tmp_path: Path) -> None:
    """Everything a connection held (its session, its tasks, the server's ``send``) goes when
    it ends, by reference counting: left in cycles, it waited for a full collection, which
    the server makes rare, and kept the server's native buffers meanwhile."""
    import gc

    from runtime.app import create_app
    from runtime.http import websocket
    from tests.support import Lifespan, settings_for_tests

    write_scripts(tmp_path / "scripts", {"echo.js": (
        "// @mode worker\n// @websocket\nmodule.exports = () => 1;\n"
        "ws.message = (socket, data) => socket.send(data);\n")})
    app = create_app(settings_for_tests(scripts=tmp_path / "scripts", data=tmp_path / "data"))
    lifespan = Lifespan(app)
    await lifespan.start()

    async def one() -> None:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for message in ({"type": "websocket.connect"}, {"type": "websocket.receive", "text": "hi"}):
            inbox.put_nowait(message)
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if message["type"] == "websocket.send":  # echoed: now the connection ends
                inbox.put_nowait({"type": "websocket.disconnect", "code": 1000})

        scope = {"type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws",
                 "path": "/echo", "raw_path": b"/echo", "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"localhost")], "client": ("127.0.0.1", 5000),
                 "server": ("127.0.0.1", 80), "subprotocols": []}
        await asyncio.wait_for(app(scope, inbox.get, send), 10)
        assert [m["type"] for m in sent][:2] == ["websocket.accept", "websocket.send"]

    try:
        await one()  # the worker starts: what it keeps for good is made here
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(3):
                await one()
            gc.collect()
            cycles = [o for o in gc.garbage if isinstance(o, websocket._Session)]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
        assert cycles == []
    finally:
        await lifespan.stop()
