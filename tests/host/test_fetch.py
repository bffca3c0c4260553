"""fetch through real scripts on the real server (``wexec serve``), against a real local upstream:
what SSRF protection refuses and what the operator opens, redirects re-checked, composition
in-process and its loop guard, concurrency, streaming in, and cancellation reaching upstream."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runtime.host.fetch.unit import UNIT
from tests.host.harness import holding
from tests.host.upstream import Upstream, upstream
from tests.support import eventually, running_server, settings_for_tests, write_scripts

GET = """
try {
  const r = await fetch(req.query.u, req.query.redirect ? { redirect: req.query.redirect } : {});
  return { status: r.status, ok: r.ok, url: r.url, redirected: r.redirected,
           type: r.headers.get('content-type'), text: await r.text() };
} catch (e) {
  return { error: e.name, message: e.message };
}
"""

RAW = """
// the raw op interface, past the guest's own URL parser: the host parses on its own
try {
  await __wexec.op('fetch.request', { url: req.query.u, method: 'GET', headers: [] });
  return { error: 'none' };
} catch (e) {
  return { error: e.name, message: e.message };
}
"""

SCRIPTS = {
    "get.js": GET,
    "raw.js": RAW,
    "headers.js": """
const r = await fetch(req.query.u);
return { text: await r.text(), headers: Object.fromEntries(r.headers) };
""",
    "post.js": """
const kind = req.query.kind;
const bodies = {
  text: 'plain text',
  bytes: new Uint8Array([104, 105]),
  form: new URLSearchParams({ a: '1', b: 'two' }),
  json: JSON.stringify({ k: [1, 2] }),
  stream: new ReadableStream({ start(c) { const e = new TextEncoder(); c.enqueue(e.encode('str')); c.enqueue(e.encode('eam')); c.close(); } }),
};
const r = await fetch(req.query.u, { method: 'POST', body: bodies[kind], headers: { 'x-kind': kind } });
return await r.json();
""",
    "request.js": """
const r = await fetch(new Request(req.query.u, { method: 'PUT', body: 'via request', headers: { 'x-a': '1' } }));
const pre = AbortSignal.abort();
let early;
try { await fetch(req.query.u, { signal: pre }); } catch (e) { early = e.name; }
return { echo: await r.json(), early };
""",
    "parallel.js": """
const t0 = Date.now();
const rs = await Promise.all([1, 2, 3].map(() => fetch(req.query.u).then((r) => r.text())));
return { ms: Date.now() - t0, texts: rs };
""",
    "passthrough.js": "return (await fetch(req.query.u)).body;",
    "abort.js": """
const c = new AbortController();
setTimeout(() => c.abort(), 100);
try { await fetch(req.query.u, { signal: c.signal }); return 'fetched'; }
catch (e) { return e.name; }
""",
    "timeout.js": """
try { await fetch(req.query.u, { signal: AbortSignal.timeout(100) }); return 'fetched'; }
catch (e) { return e.name; }
""",
    "abort-body.js": """
const c = new AbortController();
const r = await fetch(req.query.u, { signal: c.signal });
const reader = r.body.getReader();
const first = new TextDecoder().decode((await reader.read()).value);
c.abort();
return first;
""",
    "unread.js": "await fetch(req.query.u); return 'left unread';",
    "countdown.js": """
return (async function* () {
  for (let i = 3; i > 0; i--) { yield i + '\\n'; await new Promise((r) => setTimeout(r, 10)); }
  yield 'liftoff';
})();
""",
    "compose-stream.js": """
const r = await fetch('/countdown');
return { status: r.status, text: await r.text() };
""",
    "deadline.js": "// @timeout 300\nawait fetch(req.query.u); return 'fetched';",
    "echo.js": "return { method: req.method, body: req.body, hops: req.headers['x-wexec-hops'], q: req.query };",
    "secret.js": "// @token s3cret\nreturn 'secret reached';",
    "cors-target.js": "// @cors https://app.example\nreturn 'shared';",
    "compose.js": """
const r = await fetch('/echo?x=1', { method: 'POST', body: JSON.stringify({ a: 1 }),
                                     headers: { 'content-type': 'application/json' } });
const secret = await fetch('/secret');
const allowed = await fetch('/secret', { headers: { authorization: 'Bearer s3cret' } });
const cors = await fetch('/cors-target', { headers: { origin: 'https://app.example' } });
return { status: r.status, echo: await r.json(), secret: secret.status,
         allowed: await allowed.text(), missing: (await fetch('/nope')).status,
         cors: cors.headers.get('access-control-allow-origin') };
""",
    "headed.js": """
res.setHeader('X-Plain', 'a');
if (req.query.edge) res.setHeader('x-edge', ' padded ');
res.append('set-cookie', 'a=1');
res.append('set-cookie', 'b=2');
res.send('body');
""",
    "compose-headers.js": """
const seen = async (path) => {
  const r = await fetch(path);
  r.headers.append('x-added', 'by script');
  return { pairs: [...r.headers], cookies: r.headers.getSetCookie(), plain: r.headers.get('x-plain'),
           url: r.url, redirected: r.redirected, text: await r.text() };
};
return { checked: await seen('/headed'), unchecked: await seen('/headed?edge=1') };
""",
    "loop.js": """
const r = await fetch('/loop');
return new Response(await r.text(), { status: r.status, headers: { 'x-depth': String(Number(r.headers.get('x-depth') || 0) + 1) } });
""",
    "loop-worker.js": "// @mode worker\n" + """
const r = await fetch('/loop-worker');
return new Response(await r.text(), { status: r.status, headers: { 'x-depth': String(Number(r.headers.get('x-depth') || 0) + 1) } });
""",
    "bad-header.js": """
try { await __wexec.op('fetch.request', { url: req.query.u, method: 'GET', headers: [['x-a', 'line\\nbreak']] }); }
catch (e) { return e.name + ': ' + e.message; }
""",
    "narrow.js": "// @allow-hosts example.com\n" + GET,
}


@pytest.fixture(scope="module")
def up() -> Iterator[Upstream]:
    with upstream() as u:
        yield u


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, up: Upstream) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("fetch-scripts")
    write_scripts(root, SCRIPTS)
    env = {"WEXEC_FETCH_ALLOW_HOSTS": f"127.0.0.1:{up.ports[0]}"}
    with running_server(["--scripts", str(root)], env=env) as base:
        yield base


def call(server: str, script: str, **query: str) -> httpx.Response:
    return httpx.get(f"{server}/{script}", params=query, timeout=30)


def test_a_host_opened_by_the_operator_is_fetched(server: str, up: Upstream) -> None:
    got = call(server, "get", u=f"{up.base}/hello").json()
    assert got == {"status": 200, "ok": True, "url": f"{up.base}/hello", "redirected": False,
                   "type": "text/plain; charset=utf-8", "text": "hello from upstream"}
    big = call(server, "get", u=f"{up.base}/big?n=300000").json()  # streamed in, not inline
    assert big["text"] == "x" * 300_000


def test_a_compressed_body_arrives_decoded_without_the_headers_of_the_encoded_one(
    server: str, up: Upstream,
) -> None:
    got = call(server, "headers", u=f"{up.base}/gzip").json()
    assert got["text"] == "zipped " * 1000
    assert "content-encoding" not in got["headers"] and "content-length" not in got["headers"]


async def test_limits_subrequests_and_response_bytes(up: Upstream) -> None:
    settings = settings_for_tests(
        memory_limit=32 * 1024 * 1024, fetch_allow_hosts=f"127.0.0.1:{up.ports[0]}",
        fetch_max_subrequests=3, fetch_max_response_bytes=100_000,
    )
    many = (
        "const out = [];\n"
        f"for (let i = 0; i < 4; i++) {{ try {{ await fetch('{up.base}/hello'); out.push('ok'); }}"
        " catch (e) { out.push(e.message); } }\nreturn out;"
    )
    big = (
        f"try {{ return await (await fetch('{up.base}/big?n=200000')).text(); }}"
        " catch (e) { return e.message; }"
    )
    with holding(UNIT, settings=settings) as h:
        many_out, big_out = (await h.run(many)).body, (await h.run(big)).body
    assert json.loads(many_out)[:3] == ["ok", "ok", "ok"]
    assert json.loads(many_out)[3] == (
        f"fetch to {up.base}/hello refused: this request already made 3 fetches, the cap "
        "(WEXEC_FETCH_MAX_SUBREQUESTS=3)"
    )
    assert big_out.decode() == (
        f"fetch to {up.base}/big?n=200000 refused: its body of 200000 bytes is past the cap of "
        "100000 (WEXEC_FETCH_MAX_RESPONSE_BYTES)"
    )


def test_the_same_server_on_a_port_not_opened_is_refused(server: str, up: Upstream) -> None:
    port = up.ports[1]
    got = call(server, "get", u=f"{up.closed_base}/hello").json()
    assert got == {"error": "TypeError", "message": (
        f"fetch to 127.0.0.1 refused: loopback address; allow it with WEXEC_FETCH_ALLOW_HOSTS "
        f"(e.g. WEXEC_FETCH_ALLOW_HOSTS=127.0.0.1:{port})"
    )}


@pytest.mark.parametrize(("host", "rule"), [
    ("localhost", "localhost (127.0.0.1) refused: loopback address"),
    ("127.0.0.1", "127.0.0.1 refused: loopback address"),
    ("[::1]", "::1 refused: loopback address"),
    ("0.0.0.0", "0.0.0.0 refused: this-host address (0.0.0.0/8)"),
    ("0x7f000001", "127.0.0.1 refused: loopback address"),
    ("2130706433", "127.0.0.1 refused: loopback address"),
    ("0177.0.0.1", "127.0.0.1 refused: loopback address"),
    ("127.1", "127.0.0.1 refused: loopback address"),
    ("169.254.169.254", "169.254.169.254 refused: cloud metadata address"),
    ("[::ffff:127.0.0.1]", "::ffff:7f00:1 refused: loopback address embedded in an IPv6 address"),
    ("[::127.0.0.1]", "::7f00:1 refused: loopback address embedded in an IPv6 address"),
    ("10.1.2.3", "10.1.2.3 refused: private address"),
    ("100.64.0.1", "100.64.0.1 refused: shared (carrier-grade NAT) address"),
    ("[fd00::1]", "fd00::1 refused: private (unique local) address"),
    ("[fe80::1]", "fe80::1 refused: link-local address"),
])
def test_every_ssrf_form_is_refused_on_the_host(server: str, up: Upstream, host: str,
                                                rule: str) -> None:
    url = f"http://{host}:{up.ports[1]}/hello"
    for script in ("get", "raw"):  # through fetch(), and straight to the op
        got = call(server, script, u=url).json()
        assert got["error"] == "TypeError", (script, got)
        assert got["message"].startswith(f"fetch to {rule}; allow it with WEXEC_FETCH_ALLOW_HOSTS"), (
            script, got["message"])


def test_only_http_and_https_urls_are_fetched(server: str) -> None:
    for url in ("file:///etc/passwd", "ftp://example.com/", "data:text/plain,hi"):
        got = call(server, "raw", u=url).json()
        assert got["error"] == "TypeError" and "only http: and https:" in got["message"], got


def test_a_redirect_is_rechecked_and_a_refused_one_rejects_the_whole_fetch(
    server: str, up: Upstream,
) -> None:
    ok = call(server, "get", u=f"{up.base}/redirect?to=/hello").json()
    assert ok["status"] == 200 and ok["redirected"] is True and ok["url"] == f"{up.base}/hello"
    refused = call(server, "get", u=f"{up.base}/redirect?to={up.closed_base}/hello").json()
    assert refused["error"] == "TypeError"
    assert refused["message"].startswith("fetch to 127.0.0.1 refused: loopback address")
    assert refused["message"].endswith(f"(redirected from {up.base}/redirect?to={up.closed_base}/hello)")
    meta = call(server, "get", u=f"{up.base}/redirect?to=http://169.254.169.254/").json()
    assert "cloud metadata address" in meta["message"]
    manual = call(server, "get", u=f"{up.base}/redirect?to=/hello", redirect="manual").json()
    assert manual["status"] == 302 and manual["redirected"] is False


def test_allow_hosts_narrows_a_script_and_never_widens_it(server: str, up: Upstream) -> None:
    got = call(server, "narrow", u=f"{up.base}/hello").json()
    assert got["error"] == "TypeError"
    assert got["message"] == (
        f"fetch to 127.0.0.1:{up.ports[0]} refused: not among the hosts this script may reach "
        "(// @allow-hosts: example.com)"
    )


@pytest.mark.parametrize(("kind", "body", "type_"), [
    ("text", "plain text", "text/plain;charset=UTF-8"),
    ("bytes", "hi", None),
    ("form", "a=1&b=two", "application/x-www-form-urlencoded;charset=UTF-8"),
    ("json", '{"k":[1,2]}', "text/plain;charset=UTF-8"),
    ("stream", "stream", None),
])
def test_request_bodies_reach_upstream(server: str, up: Upstream, kind: str, body: str,
                                       type_: str | None) -> None:
    got = call(server, "post", u=f"{up.base}/echo", kind=kind).json()
    headers = {k.lower(): v for k, v in got["headers"].items()}
    assert got["method"] == "POST" and got["body"] == body
    assert headers.get("content-type") == type_
    assert headers["x-kind"] == kind and headers["x-wexec-hops"] == "1"


def test_a_request_object_is_fetched_and_an_aborted_signal_rejects_at_once(
    server: str, up: Upstream,
) -> None:
    got = call(server, "request", u=f"{up.base}/echo").json()
    assert got["early"] == "AbortError"
    assert got["echo"]["method"] == "PUT" and got["echo"]["body"] == "via request"
    assert {k.lower(): v for k, v in got["echo"]["headers"].items()}["x-a"] == "1"


def test_a_header_that_could_split_the_request_is_refused(server: str, up: Upstream) -> None:
    assert call(server, "bad-header", u=f"{up.base}/echo").text == (
        "TypeError: the value of header 'x-a' holds a line break, a NUL or a character past U+00FF"
    )


def test_three_fetches_of_200_ms_at_once_take_about_200_ms(server: str, up: Upstream) -> None:
    got = call(server, "parallel", u=f"{up.base}/slow?ms=200").json()
    assert got["texts"] == ["slow"] * 3
    assert 190 <= got["ms"] < 450, got


def test_the_first_chunk_reaches_the_client_before_upstream_finishes(server: str,
                                                                      up: Upstream) -> None:
    up.release.clear()
    with httpx.stream("GET", f"{server}/passthrough", params={"u": f"{up.base}/drip"},
                      timeout=10) as resp:
        chunks = resp.iter_bytes()
        assert next(chunks) == b"first\n"
        assert "drip" not in up.finished  # upstream is still holding the rest
        up.release.set()
        assert b"".join(chunks) == b"last\n"
    eventually(lambda: "drip" in up.finished)


@pytest.mark.parametrize(("script", "answer"), [
    ("abort", "AbortError"), ("timeout", "TimeoutError"), ("abort-body", "first\n"),
    ("unread", "left unread"),
])
def test_abort_and_timeout_cancel_the_upstream_request(server: str, up: Upstream, script: str,
                                                       answer: str) -> None:
    up.release.clear()
    up.disconnected.clear()
    path = "/drip" if script in ("abort-body", "unread") else "/hang"
    t0 = time.monotonic()
    assert call(server, script, u=f"{up.base}{path}").text == answer
    assert time.monotonic() - t0 < 5
    assert up.disconnected.wait(5), "upstream never saw the request cancelled"


def test_the_scripts_own_deadline_cancels_its_fetch(server: str, up: Upstream) -> None:
    up.disconnected.clear()
    assert call(server, "deadline", u=f"{up.base}/hang").status_code == 504
    assert up.disconnected.wait(5)


def test_a_relative_url_runs_the_tenants_route_in_process_through_the_gateway(
    server: str,
) -> None:
    got = call(server, "compose").json()
    assert got["status"] == 200
    assert got["echo"] == {"method": "POST", "body": {"a": 1}, "hops": "1", "q": {"x": "1"}}
    assert got["secret"] == 401  # @token applies in-process too
    assert got["allowed"] == "secret reached"
    assert got["missing"] == 404
    assert got["cors"] == "https://app.example"  # and CORS


def test_a_fetched_response_has_the_same_headers_whether_the_host_vouched_for_them(
    server: str,
) -> None:
    """The host marks a head whose headers the guest may take as they are; one it cannot vouch
    for (a value with edge spaces) is checked in the guest: both make the same Response."""
    got = call(server, "compose-headers").json()
    for seen, extra in ((got["checked"], []), (got["unchecked"], [["x-edge", "padded"]])):
        assert seen["pairs"] == sorted([
            ["content-length", "4"], ["content-type", "text/html; charset=utf-8"],
            ["set-cookie", "a=1"], ["set-cookie", "b=2"], ["x-added", "by script"],
            ["x-plain", "a"], *extra,
        ])
        assert seen["cookies"] == ["a=1", "b=2"]
        assert seen["plain"] == "a"
        assert seen["url"].endswith("/headed" if not extra else "/headed?edge=1")
        assert not seen["redirected"]
        assert seen["text"] == "body"


def test_a_streamed_answer_composes_whole(server: str) -> None:
    assert call(server, "compose-stream").json() == {"status": 200, "text": "3\n2\n1\nliftoff"}


@pytest.mark.parametrize("script", ["loop", "loop-worker"])
def test_a_loop_of_fetches_stops_at_the_hop_limit(server: str, script: str) -> None:
    resp = call(server, script)
    assert resp.status_code == 508
    assert resp.headers["x-depth"] == "17"  # 16 hops, then the 17th is refused
    assert json.loads(resp.text)["error"] == "loop_detected"
