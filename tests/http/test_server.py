"""The real server, driven over HTTP: routing, every request-level magic comment, errors,
hot reload, tenants and log redaction. One `wexec serve --tenants-root` for the module."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import eventually, running_server, write_atomically, write_scripts

ROUTE_FILES = [
    "index.ts", "about.ts", "blog/index.ts", "blog/[slug].ts", "blog/featured.ts",
    "docs/[...path].ts", "shop/[[...path]].ts", "files/[...rest].ts",
    "files/special/[...rest].ts", "users/[id]/posts.ts", "_helper.ts",
]
NOT_ROUTED = {"notes.md": "# not code", "data.json": '{"a": 1}', "types.d.ts": "export {}"}

TOKEN = "tok-SECRET-123"
THROW_TOKEN = "tok-THROW-9"
WRONG_TOKEN = "tok-WRONG-777"
ORIGIN = "https://app.example.com"


def _route_script(rel: str) -> str:
    return (f"return {{ script: {json.dumps(rel)}, params: metadata.parameters, "
            "method: metadata.method, query: metadata.query };\n")


def _wait(ms: int, extra: str = "") -> str:
    return (f"const start = Date.now();\nawait new Promise((r) => setTimeout(r, {ms}));\n"
            f"return {{ start, end: Date.now(), n: metadata.query.n{extra} }};\n")


COUNTER = ("// @mode worker\n// @log-level minimal\n"
           "globalThis.n = (globalThis.n || 0) + 1;\nreturn { n: globalThis.n };\n")

DEFAULT_TENANT = {
    **{rel: _route_script(rel) for rel in ROUTE_FILES},
    **NOT_ROUTED,
    "echo.js": "module.exports = (req, res) => res.json({ ok: true, body: req.body });\n",
    "workflow.js": (
        "module.exports = async (req, res) => {\n"
        "  const callA = async () => ({ score: 0.91, label: 'spam' });\n"
        "  const checkB = async (a) => ({ verdict: a.score > 0.8 ? 'block' : 'allow' });\n"
        "  const actC  = async (v) => ({ executed: v === 'block' ? 'quarantined' : 'delivered' });\n"
        "  const a = await callA();\n  const b = await checkB(a);\n  const c = await actC(b.verdict);\n"
        "  res.json({ a, b, c });\n};\n"
    ),
    "cors/reflective.ts": "// @cors reflective\nreturn { ok: true };\n",
    "cors/star.ts": "// @cors *\nreturn { ok: true };\n",
    "cors/origin.ts": f"// @cors {ORIGIN}\nreturn {{ ok: true }};\n",
    "cors/none.ts": "return { ok: true };\n",
    "token.ts": (
        f"// @token {TOKEN}\n// @log-level debug\n"
        f"console.log('my token is {TOKEN}');\n"
        "console.log('headers', JSON.stringify(req.headers), 'query', JSON.stringify(metadata.query));\n"
        "return { headers: req.headers, query: metadata.query, url: req.url };\n"
    ),
    "token-throw.ts": f"// @token {THROW_TOKEN}\nthrow new Error('failed with {THROW_TOKEN}');\n",
    "timeout/explicit.ts": "// @timeout 300\n" + _wait(3000),
    "timeout/spin.ts": "// @timeout 300\nwhile (true) {}\n",
    "timeout/default.ts": _wait(900),
    "timeout/unlimited.ts": "// @timeout unlimited\n" + _wait(700),
    "timeout/capped.ts": "// @timeout 5000\n" + _wait(1500),
    "concurrent/serial.ts": "// @concurrent false\n" + _wait(150),
    "concurrent/two.ts": "// @concurrent 2\n" + _wait(200),
    "concurrent/free.ts": "// @concurrent true\n" + _wait(200),
    "concurrent/shed.ts": "// @concurrent 1\n" + _wait(300),
    "mode/worker.ts": COUNTER,
    "mode/serverless.ts": COUNTER.replace("worker", "serverless"),
    "log/none.ts": "// @log-level none\nconsole.error('none-marker');\nreturn 1;\n",
    "log/minimal.ts": "// @log-level minimal\nconsole.error('minimal-marker');\nreturn 1;\n",
    "log/standard.ts": "console.error('std-error-marker');\nconsole.log('std-log-marker');\nreturn 1;\n",
    "log/debug.ts": (
        "// @log-level debug\nconsole.debug('debug-marker');\nconsole.log('log-marker');\nreturn 1;\n"
    ),
    "log/body.ts": "// @log-level minimal\n// @log-request-body\nreturn 1;\n",
    "log/fails.ts": "console.error('last-words-marker');\nthrow new Error('gone');\n",
    "disabled.ts": "// @enabled false\nreturn 1;\n",
    "errors/throws.ts": (
        "// An error thrown on line 5, after TypeScript-only lines that esbuild strips.\n"
        "interface X { a: number }\nconst x: X = { a: 1 };\nfunction boom(): never {\n"
        "  throw new TypeError('boom ' + x.a);\n}\nboom();\n"
    ),
    "errors/badmagic.ts": "// @description fine\n// @timeout soon\nreturn 1;\n",
    "errors/syntax.ts": "const ok = 1;\nconst broken = ;\nreturn ok;\n",
    "stream/ticks.ts": (
        "// @log-level full\nconst sleep = (ms) => new Promise((r) => setTimeout(r, ms));\n"
        "res.type('text');\n"
        "return (async function* () {\n  yield 'first\\n';\n  await sleep(150);\n"
        "  yield 'second\\n';\n  await sleep(150);\n  yield 'third\\n';\n})();\n"
    ),
    "stream/events.ts": (
        "// @mode worker\nres.setHeader('content-type', 'text/event-stream');\n"
        "res.write('data: 1\\n\\n');\n"
        "setTimeout(() => res.end('data: 2\\n\\n'), 150);\n"
    ),
    "stream/throws.ts": (
        "// @log-level full\n"
        "export default async function* () {\n  yield 'partial';\n"
        "  await new Promise((r) => setTimeout(r, 50));\n  throw new Error('stream-broke');\n}\n"
    ),
    "stream/serial.ts": (
        "// @concurrent false\n"
        "export default async function* () {\n  yield 'start ';\n"
        "  await new Promise((r) => setTimeout(r, 150));\n  yield 'end';\n}\n"
    ),
    "stream/endless.ts": (
        "// @mode worker\n"
        "let served = 0;\n"
        "export default (req) => {\n  if (req.method === 'GET') return { served: ++served };\n"
        "  return (async function* () {\n"
        "    for (let i = 0; ; i++) { yield `${i}\\n`; await new Promise((r) => setTimeout(r, 20)); }\n"
        "  })();\n};\n"
    ),
    "errors/post-only.ts": (
        "if (metadata.method !== 'POST') {\n  res.setHeader('Allow', 'POST');\n"
        "  return res.status(405).json({ error: 'use POST' });\n}\nreturn { ok: true };\n"
    ),
}
TENANTS = {
    "alice/1": {"counter.ts": COUNTER, "only-alice.ts": "// @log-level minimal\nreturn 'alice';\n"},
    "bob/1": {"counter.ts": COUNTER},
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tenants")
    write_scripts(root / "default" / "1", DEFAULT_TENANT)
    for tenant, files in TENANTS.items():
        write_scripts(root / tenant, files)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def base(root: Path, data: Path) -> Iterator[str]:
    env = {"WEXEC_TIMEOUT_MS": "500", "WEXEC_MAX_TIMEOUT_MS": "1000", "WEXEC_MAX_QUEUE": "3",
           "WEXEC_RELOAD_INTERVAL_MS": "100"}
    with running_server(["--tenants-root", str(root), "--data", str(data)], env) as url:
        yield url


@pytest.fixture(scope="module")
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=10) as c:
        yield c


def log_lines(data: Path, tenant: str = "default-1") -> list[dict]:
    path = data / "logs" / f"{tenant}.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- the reference examples -------------------------------------------------------------------

def test_echo(client: httpx.Client) -> None:
    r = client.post("/echo", json={"hello": "world"})
    assert r.status_code == 200
    assert r.json() == {"ok": True, "body": {"hello": "world"}}


def test_workflow(client: httpx.Client) -> None:
    r = client.post("/workflow", json={})
    assert r.json() == {"a": {"score": 0.91, "label": "spam"}, "b": {"verdict": "block"},
                        "c": {"executed": "quarantined"}}


def test_health(client: httpx.Client) -> None:
    r = client.get("/api/v1/exec/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert r.json()["tenants"] == 3
    for method, path, status in (("GET", "/api/v1/exec/nope", 404),
                                 ("POST", "/api/v1/exec/health", 405)):
        r = client.request(method, path)
        assert r.status_code == status and r.json()["path"] == path  # JSON like every error


# -- routing ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "script", "params"), [
    ("/", "index.ts", {}),
    ("/about", "about.ts", {}),
    ("/blog", "blog/index.ts", {}),
    ("/blog/hello", "blog/[slug].ts", {"slug": "hello"}),
    ("/blog/featured", "blog/featured.ts", {}),
    ("/docs/a/b", "docs/[...path].ts", {"path": ["a", "b"]}),
    ("/shop", "shop/[[...path]].ts", {"path": []}),
    ("/shop/x", "shop/[[...path]].ts", {"path": ["x"]}),
    ("/files/special/x", "files/special/[...rest].ts", {"rest": ["x"]}),
    ("/files/other/x", "files/[...rest].ts", {"rest": ["other", "x"]}),
    ("/users/42/posts", "users/[id]/posts.ts", {"id": "42"}),
])
def test_routes(client: httpx.Client, path: str, script: str, params: dict) -> None:
    r = client.get(path, params={"q": "1"})
    assert r.status_code == 200, r.text
    assert r.json() == {"script": script, "params": params, "method": "GET", "query": {"q": "1"}}


@pytest.mark.parametrize("path", ["/docs", "/notes", "/data", "/types", "/_helper", "/nope/x"])
def test_unrouted_is_404_with_the_path(client: httpx.Client, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404
    assert r.json()["error"] == "not_found" and r.json()["path"] == path


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_any_method_reaches_the_script(client: httpx.Client, method: str) -> None:
    assert client.request(method, "/about").json()["method"] == method


# -- @cors ------------------------------------------------------------------------------------

def test_cors_reflective_mirrors_origin_and_answers_preflight(client: httpx.Client) -> None:
    r = client.get("/cors/reflective", headers={"origin": "https://x.test"})
    assert r.headers["access-control-allow-origin"] == "https://x.test"
    p = client.options("/cors/reflective", headers={
        "origin": "https://x.test", "access-control-request-method": "PUT",
        "access-control-request-headers": "x-custom"})
    assert p.status_code == 204
    assert p.headers["access-control-allow-methods"] == "PUT"
    assert p.headers["access-control-allow-headers"] == "x-custom"
    names = [k.lower() for k, _ in p.headers.multi_items()]
    assert len(names) == len(set(names)), f"a header sent twice: {names}"
    assert p.headers["access-control-allow-origin"] == "https://x.test"


def test_cors_star(client: httpx.Client) -> None:
    r = client.get("/cors/star", headers={"origin": "https://x.test"})
    assert r.headers["access-control-allow-origin"] == "*"


def test_cors_specific_origin(client: httpx.Client) -> None:
    r = client.get("/cors/origin", headers={"origin": "https://x.test"})
    assert r.headers["access-control-allow-origin"] == ORIGIN
    p = client.options("/cors/origin", headers={
        "origin": "https://x.test", "access-control-request-method": "GET"})
    assert p.headers.get("access-control-allow-origin") != "https://x.test"
    assert "access-control-allow-methods" not in p.headers


def test_cors_none_sends_nothing(client: httpx.Client) -> None:
    r = client.get("/cors/none", headers={"origin": "https://x.test"})
    assert "access-control-allow-origin" not in r.headers


# -- @token -----------------------------------------------------------------------------------

def test_token_missing_or_wrong_is_401(client: httpx.Client) -> None:
    for headers in ({}, {"authorization": f"Bearer {WRONG_TOKEN}"}):
        r = client.get("/token", headers=headers)
        assert r.status_code == 401 and r.json()["error"] == "unauthorized"
        assert TOKEN not in r.text


@pytest.mark.parametrize("how", ["bearer", "basic", "x-token", "query"])
def test_token_accepted_and_hidden_from_script(client: httpx.Client, how: str) -> None:
    headers, params = {}, {"keep": "1"}
    if how == "bearer":
        headers["authorization"] = f"Bearer {TOKEN}"
    elif how == "basic":
        headers["authorization"] = "Basic " + base64.b64encode(f"u:{TOKEN}".encode()).decode()
    elif how == "x-token":
        headers["x-token"] = TOKEN
    else:
        params["token"] = TOKEN
    r = client.get("/token", headers=headers, params=params)
    assert r.status_code == 200, r.text
    assert TOKEN not in r.text  # neither headers, query nor URL carry it into the script
    assert r.json()["query"] == {"keep": "1"}


def test_token_never_in_errors_or_logs(client: httpx.Client, data: Path) -> None:
    r = client.get("/token-throw", headers={"x-token": THROW_TOKEN})
    assert r.status_code == 500 and THROW_TOKEN not in r.text and "[REDACTED]" in r.text
    client.get("/token", params={"token": TOKEN})
    client.get("/token", headers={"authorization": f"Bearer {WRONG_TOKEN}"})
    eventually(lambda: any(e["path"] == "/token" and e["status"] == 401 for e in log_lines(data)))
    text = "".join(p.read_text() for p in (data / "logs").iterdir())
    assert "/token" in text and "[REDACTED]" in text
    for secret in (TOKEN, THROW_TOKEN, WRONG_TOKEN):
        assert secret not in text


# -- @timeout ---------------------------------------------------------------------------------

def test_timeout_explicit_is_504_with_the_limit(client: httpx.Client) -> None:
    t0 = time.monotonic()
    r = client.get("/timeout/explicit")
    elapsed = time.monotonic() - t0
    assert r.status_code == 504 and r.json()["limit_ms"] == 300
    assert elapsed < 0.3 + 0.1


def test_timeout_default_from_settings(client: httpx.Client) -> None:
    r = client.get("/timeout/default")
    assert r.status_code == 504 and r.json()["limit_ms"] == 500


def test_timeout_unlimited_lifts_the_default(client: httpx.Client) -> None:
    assert client.get("/timeout/unlimited").status_code == 200


def test_timeout_capped_by_settings(client: httpx.Client) -> None:
    r = client.get("/timeout/capped")
    assert r.status_code == 504 and r.json()["limit_ms"] == 1000


async def test_runaway_loop_stopped_in_time_while_others_are_served(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=10) as ac:
        t0 = time.monotonic()
        spin = asyncio.create_task(ac.get("/timeout/spin"))
        others: list[tuple[int, float]] = []
        while not spin.done():
            s = time.monotonic()
            r = await ac.get("/about")
            others.append((r.status_code, time.monotonic() - s))
            await asyncio.sleep(0.02)
        r = await spin
        elapsed = time.monotonic() - t0
    assert r.status_code == 504 and r.json()["limit_ms"] == 300
    assert elapsed < 0.3 + 0.1
    assert len(others) >= 3 and all(status == 200 for status, _ in others)
    assert max(t for _, t in others) < 0.15


# -- @concurrent ------------------------------------------------------------------------------

async def _burst(base: str, path: str, n: int, gap_s: float = 0.0) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base, timeout=10) as ac:
        tasks = []
        for i in range(n):
            tasks.append(asyncio.create_task(ac.get(path, params={"n": str(i)})))
            await asyncio.sleep(gap_s)
        return list(await asyncio.gather(*tasks))


def _peak(runs: list[dict]) -> int:
    events = sorted([(r["start"], 1) for r in runs] + [(r["end"], -1) for r in runs],
                    key=lambda e: (e[0], e[1]))
    active = peak = 0
    for _, delta in events:
        active += delta
        peak = max(peak, active)
    return peak


async def test_concurrent_false_is_serial_in_arrival_order(base: str) -> None:
    rs = await _burst(base, "/concurrent/serial", 4, gap_s=0.05)  # arrival order, even under load
    runs = [r.json() for r in rs]
    assert _peak(runs) == 1
    by_start = sorted(runs, key=lambda r: r["start"])
    assert [r["n"] for r in by_start] == ["0", "1", "2", "3"]


async def test_concurrent_number_caps_parallel_runs(base: str) -> None:
    runs = [r.json() for r in await _burst(base, "/concurrent/two", 4)]
    assert _peak(runs) == 2


async def test_concurrent_true_is_unlimited(base: str) -> None:
    runs = [r.json() for r in await _burst(base, "/concurrent/free", 4)]
    assert _peak(runs) == 4


async def test_queue_past_limit_sheds_503(base: str) -> None:
    rs = await _burst(base, "/concurrent/shed", 8)
    codes = sorted(r.status_code for r in rs)
    assert codes.count(200) == 4 and codes.count(503) == 4  # 1 running + WEXEC_MAX_QUEUE=3
    shed = next(r for r in rs if r.status_code == 503)
    assert shed.json()["error"] == "overloaded" and shed.headers["retry-after"]


# -- @mode ------------------------------------------------------------------------------------

def test_mode_worker_keeps_state_serverless_does_not(client: httpx.Client) -> None:
    worker = [client.get("/mode/worker").json()["n"] for _ in range(3)]
    assert worker[1] == worker[0] + 1 and worker[2] == worker[0] + 2
    assert [client.get("/mode/serverless").json()["n"] for _ in range(3)] == [1, 1, 1]


# -- @log-level, @log-request-body ------------------------------------------------------------

def _entries(data: Path, path: str) -> list[dict]:
    return [e for e in log_lines(data) if e["path"] == path]


def test_log_levels(client: httpx.Client, data: Path) -> None:
    for path in ("/log/none", "/log/minimal", "/log/standard", "/log/debug"):
        assert client.get(path).status_code == 200
    eventually(lambda: bool(_entries(data, "/log/debug")))
    assert _entries(data, "/log/none") == []
    minimal = _entries(data, "/log/minimal")[-1]
    assert minimal["status"] == 200 and [c["msg"] for c in minimal["console"]] == ["minimal-marker"]
    standard = _entries(data, "/log/standard")[-1]
    assert [c["msg"] for c in standard["console"]] == ["std-error-marker", "std-log-marker"]
    debug = _entries(data, "/log/debug")[-1]
    assert [c["msg"] for c in debug["console"]] == ["debug-marker", "log-marker"]
    assert "response_headers" in debug


def test_log_request_body(client: httpx.Client, data: Path) -> None:
    client.post("/log/body", content=b"body-marker", headers={"content-type": "text/plain"})
    client.post("/log/minimal", content=b"quiet-marker", headers={"content-type": "text/plain"})
    eventually(lambda: bool(_entries(data, "/log/body")))
    assert _entries(data, "/log/body")[-1]["body"] == "body-marker"
    assert all("body" not in e for e in _entries(data, "/log/minimal"))


def test_a_failed_run_logs_its_console_output(client: httpx.Client, data: Path) -> None:
    assert client.get("/log/fails").status_code == 500
    eventually(lambda: bool(_entries(data, "/log/fails")))
    entry = _entries(data, "/log/fails")[-1]
    assert [c["msg"] for c in entry["console"]] == ["last-words-marker"]


# -- streamed responses ----------------------------------------------------------------------

def test_a_streamed_body_arrives_chunk_by_chunk(client: httpx.Client, data: Path) -> None:
    with client.stream("GET", "/stream/ticks") as r:
        head_at = time.monotonic()
        got = [(time.monotonic(), chunk) for chunk in r.iter_raw()]
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "content-length" not in r.headers and r.headers["transfer-encoding"] == "chunked"
    assert [chunk for _, chunk in got] == [b"first\n", b"second\n", b"third\n"]
    assert got[0][0] - head_at < 0.1
    assert all(0.12 <= b[0] - a[0] < 0.3 for a, b in itertools.pairwise(got))
    eventually(lambda: bool(_entries(data, "/stream/ticks")))
    entry = _entries(data, "/stream/ticks")[-1]
    assert entry["status"] == 200 and entry["response_size"] == 19 and entry["ms"] >= 300


def test_server_sent_events_written_with_res_write(client: httpx.Client) -> None:
    with client.stream("GET", "/stream/events") as r:
        head_at = time.monotonic()
        got = [(time.monotonic(), chunk) for chunk in r.iter_raw()]
    assert r.headers["content-type"] == "text/event-stream"
    assert b"".join(chunk for _, chunk in got) == b"data: 1\n\ndata: 2\n\n"
    assert got[0][1] == b"data: 1\n\n" and got[0][0] - head_at < 0.1
    assert got[-1][0] - got[0][0] >= 0.12


def test_a_stream_that_throws_is_cut_short_and_logged(client: httpx.Client, data: Path) -> None:
    got = b""
    with pytest.raises(httpx.RemoteProtocolError), client.stream("GET", "/stream/throws") as r:
        for chunk in r.iter_raw():
            got += chunk
    assert r.status_code == 200 and got == b"partial"
    eventually(lambda: bool(_entries(data, "/stream/throws")))
    entry = _entries(data, "/stream/throws")[-1]
    assert "stream-broke" in entry["error"] and entry["response_size"] == 7


async def test_a_stream_holds_its_concurrent_slot_until_it_ends(base: str) -> None:
    async def fetch(ac: httpx.AsyncClient) -> tuple[float, float]:
        async with ac.stream("GET", "/stream/serial") as r:
            chunks = r.aiter_raw()
            assert await chunks.__anext__() == b"start "
            first = time.monotonic()
            assert b"".join([c async for c in chunks]) == b"end"
            return first, time.monotonic()

    async with httpx.AsyncClient(base_url=base, timeout=10) as ac:
        await fetch(ac)  # compiled and warm
        first, second = sorted(await asyncio.gather(fetch(ac), fetch(ac)))
    assert second[0] >= first[1] - 0.01


def test_a_client_leaving_mid_stream_ends_it(client: httpx.Client, data: Path) -> None:
    served = client.get("/stream/endless").json()["served"]
    with client.stream("POST", "/stream/endless") as r:
        assert next(r.iter_raw()) == b"0\n"
    eventually(lambda: any("went away" in (e.get("error") or "")
                           for e in _entries(data, "/stream/endless")), timeout_s=0.8)
    assert client.get("/stream/endless").json()["served"] == served + 1


# -- @enabled, errors -------------------------------------------------------------------------

def test_disabled_script_is_404(client: httpx.Client) -> None:
    r = client.get("/disabled")
    assert r.status_code == 404 and "@enabled" in r.json()["message"]


def test_script_error_is_500_with_source_position(client: httpx.Client) -> None:
    r = client.get("/errors/throws")
    body = r.json()
    assert r.status_code == 500 and body["error"] == "script_error"
    assert body["script"] == "errors/throws.ts" and body["line"] == 5
    assert isinstance(body["col"], int)
    assert "TypeError: boom 1" in body["message"]
    assert client.get("/about").status_code == 200  # the process is fine


def test_bad_magic_comment_names_its_line(client: httpx.Client) -> None:
    r = client.get("/errors/badmagic")
    body = r.json()
    assert r.status_code == 500 and body["error"] == "invalid_magic_comments"
    assert body["line"] == 2 and "@timeout" in body["problems"][0]["message"]


def test_syntax_error_names_its_line(client: httpx.Client) -> None:
    r = client.get("/errors/syntax")
    body = r.json()
    assert r.status_code == 500 and body["error"] == "compile_error" and body["line"] == 2


def test_script_declared_405_passes_through(client: httpx.Client) -> None:
    r = client.get("/errors/post-only")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert client.post("/errors/post-only").status_code == 200


def _raw_post(base: str, head: str, body_chunks: Iterator[bytes]) -> bytes:
    """POST over a bare socket, reading the answer even if the server stops reading first:
    HTTP clients that insist on sending the whole body first cannot see an early 413."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode())
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except OSError:
            pass  # the server answered and closed: the answer is what matters
        return _read_answer(sock)


def _read_answer(sock: socket.socket) -> bytes:
    answer = b""
    while True:
        head, sep, body = answer.partition(b"\r\n\r\n")
        length = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
        if sep and length and len(body) >= int(length.group(1)):
            return answer
        chunk = sock.recv(65536)
        if not chunk:
            return answer
        answer += chunk


def test_body_over_limit_is_413(base: str, client: httpx.Client) -> None:
    limit = 10 * 1024 * 1024
    declared = (f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {limit + 1}\r\n\r\n")
    answer = _raw_post(base, declared, iter([]))  # refused on the header, before any body byte
    assert answer.startswith(b"HTTP/1.1 413") and b'"limit":10485760' in answer

    chunked = ("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
               "Transfer-Encoding: chunked\r\n\r\n")
    mib = b"x" * (1024 * 1024)
    chunks = (b"%x\r\n%s\r\n" % (len(mib), mib) for _ in range(11))
    assert _raw_post(base, chunked, chunks).startswith(b"HTTP/1.1 413")  # counted while read
    assert client.post("/echo", content=b"x" * 1000,
                       headers={"content-type": "text/plain"}).status_code == 200


# -- hot reload -------------------------------------------------------------------------------

def test_hot_reload(client: httpx.Client, root: Path) -> None:
    script = root / "default" / "1" / "reload" / "me.ts"
    write_atomically(script, "return { v: 1 };\n")
    eventually(lambda: client.get("/reload/me").status_code == 200)
    assert client.get("/reload/me").json() == {"v": 1}

    script.write_text("return { v: 2 };\n")  # an in-place rewrite, like most editors
    eventually(lambda: client.get("/reload/me").json() == {"v": 2})

    script.write_text("return { v: ;\n")  # broken: the last good version keeps serving
    time.sleep(0.6)
    assert client.get("/reload/me").json() == {"v": 2}

    write_atomically(script, "return { v: 3 };\n")
    eventually(lambda: client.get("/reload/me").json() == {"v": 3})

    script.unlink()
    eventually(lambda: client.get("/reload/me").status_code == 404)


def test_hot_reload_of_a_worker_drops_its_state(client: httpx.Client, root: Path) -> None:
    script = root / "default" / "1" / "reload" / "worker.ts"
    write_atomically(script, COUNTER)
    eventually(lambda: client.get("/reload/worker").status_code == 200)
    assert client.get("/reload/worker").json()["n"] >= 2
    write_atomically(script, COUNTER.replace("{ n: globalThis.n }", "{ n: globalThis.n, v: 2 }"))
    eventually(lambda: "v" in client.get("/reload/worker").json())
    assert client.get("/reload/worker").json()["n"] <= 3


# -- tenants ----------------------------------------------------------------------------------

def test_tenants_are_isolated(client: httpx.Client, data: Path) -> None:
    alice, bob = {"host": "alice-1.localhost"}, {"host": "bob-1.localhost"}
    a = [client.get("/counter", headers=alice).json()["n"] for _ in range(3)]
    b = client.get("/counter", headers=bob).json()["n"]
    assert a == [a[0], a[0] + 1, a[0] + 2] and b == 1  # one worker each, not shared
    assert client.get("/only-alice", headers=alice).text == "alice"
    assert client.get("/only-alice", headers=bob).status_code == 404
    assert client.get("/only-alice").status_code == 404  # the default tenant neither
    assert client.get("/about", headers=bob).status_code == 404
    assert client.get("/about", headers={"host": "nobody-9.localhost"}).status_code == 200
    eventually(lambda: bool(log_lines(data, "alice-1")))
    assert {e["script"] for e in log_lines(data, "alice-1")} <= {"counter.ts", "only-alice.ts"}
    assert all(e["path"] != "/only-alice" or e["status"] == 404 for e in log_lines(data, "bob-1"))
