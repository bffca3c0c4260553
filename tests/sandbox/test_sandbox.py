"""The sandbox core end to end: real guest, real wasmtime, real esbuild."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
import sys
import time
from itertools import count

import pytest

from runtime.compiler import Artefact, CompileError
from runtime.config import REPO_ROOT
from runtime.sandbox import (
    Invocation,
    Result,
    Sandbox,
    ScriptError,
    ScriptMemoryError,
    ScriptTimeout,
)
from runtime.sandbox.driver import STREAM_OVERFLOW_BYTES
from runtime.sandbox.sandbox import SlowScripts
from runtime.sandbox.worker import BATCH_MAX, WorkerDriver

_names = count()


def run(sandbox: Sandbox, source: str, *, ext: str = "ts", inv: Invocation | None = None, **kw: object) -> Result:
    artefact = sandbox.compiler.compile_source(source, f"t{next(_names)}.{ext}")
    return sandbox.run_sync(artefact, inv or Invocation("GET", "/t"), **kw)  # type: ignore[arg-type]


def body(result: Result) -> object:
    return json.loads(result.body)


def header(result: Result, name: str) -> str | None:
    return next((v for k, v in result.headers if k.lower() == name), None)


# -- script shapes ---------------------------------------------------------------------------

SHAPES = {
    "top-level return": "return { shape: 'body', m: metadata.method };",
    "module.exports arrow": "module.exports = (req, res) => res.json({ shape: 'cjs', m: req.method });",
    "module.exports async function": "module.exports = async function (req, res) { return { shape: 'cjs-async', m: req.method }; };",
    "export default function": "export default function handler(req, res) { return { shape: 'esm', m: req.method }; }",
    "export default async arrow": "export default async (req, res) => { res.json({ shape: 'esm-async', m: req.method }); };",
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_every_script_shape_answers(sandbox: Sandbox, name: str) -> None:
    result = run(sandbox, SHAPES[name])
    assert result.status == 200
    assert header(result, "content-type", ).startswith("application/json")
    assert body(result)["m"] == "GET"


def test_a_returned_value_settles_after_the_jobs_the_script_queued(sandbox: Sandbox) -> None:
    # the same with and without an await in the script: as `await handler()` would see it
    for src in (
        "Promise.resolve().then(() => res.setHeader('x-late', '1'));\nreturn { ok: 1 };",
        "await null;\nPromise.resolve().then(() => res.setHeader('x-late', '1'));\nreturn { ok: 1 };",
        "export default (req, res) => { Promise.resolve().then(() => res.setHeader('x-late', '1')); return { ok: 1 }; };",
    ):
        result = run(sandbox, src)
        assert body(result) == {"ok": 1} and header(result, "x-late") == "1", src


def test_top_level_await_and_import(sandbox: Sandbox) -> None:
    src = "import crypto from 'crypto';\nconst v = await Promise.resolve(41);\nreturn { v: v + 1, h: crypto.createHash('sha256').update('x').digest('hex') };"
    assert body(run(sandbox, src)) == {"v": 42, "h": hashlib.sha256(b"x").hexdigest()}


def test_typescript_constructs(sandbox: Sandbox) -> None:
    src = """
import type { Something } from './types';
interface Point { x: number; y?: number }
enum Color { Red = 'red', Green = 'green' }
function first<T>(xs: T[]): T | undefined { return xs[0]; }
const p = { x: 1 } as Point;
const q: Point | undefined = undefined;
return { c: Color.Green, f: first<number>([7, 8]), y: p.y ?? 0, z: q?.x ?? 'none', x: (p as any).x };
"""
    assert body(run(sandbox, src)) == {"c": "green", "f": 7, "y": 0, "z": "none", "x": 1}


def test_namespaces_in_module_scripts(sandbox: Sandbox) -> None:
    src = "namespace Geo { export const R = 6371; }\nexport default () => ({ r: Geo.R });"
    assert body(run(sandbox, src)) == {"r": 6371}


# -- req, res and the return value -----------------------------------------------------------


def test_request_is_parsed_by_content_type(sandbox: Sandbox) -> None:
    src = "return { body: req.body, raw: req.rawBody, q: metadata.query, p: metadata.parameters, path: metadata.path };"
    inv = Invocation("POST", "/t", "http://x/t?a=1", {"content-type": "application/json"}, {"a": "1"}, {"id": "9"}, b'{"k": [1, 2]}')
    out = body(run(sandbox, src, inv=inv))
    assert out == {"body": {"k": [1, 2]}, "raw": '{"k": [1, 2]}', "q": {"a": "1"}, "p": {"id": "9"}, "path": "/t"}
    form = Invocation("POST", "/t", headers={"content-type": "application/x-www-form-urlencoded"}, body=b"a=1&b=two+words")
    assert body(run(sandbox, "return req.body;", inv=form)) == {"a": "1", "b": "two words"}
    text = Invocation("POST", "/t", headers={"content-type": "text/plain"}, body=b"hello")
    assert body(run(sandbox, "return { t: req.body };", inv=text)) == {"t": "hello"}
    raw = Invocation("POST", "/t", headers={"content-type": "application/octet-stream"}, body=b"\x00\x01\xff")
    assert body(run(sandbox, "return { n: req.body.length, last: req.body[2] };", inv=raw)) == {"n": 3, "last": 255}


def test_res_builds_the_response(sandbox: Sandbox) -> None:
    r = run(sandbox, "res.status(201).setHeader('X-A', 'b'); res.json({ made: true });")
    assert (r.status, header(r, "x-a"), body(r)) == (201, "b", {"made": True})
    r = run(sandbox, "res.redirect('/elsewhere');")
    assert (r.status, header(r, "location")) == (302, "/elsewhere")
    r = run(sandbox, "return res.status(404).send('gone');")
    assert (r.status, r.body) == (404, b"gone")


def test_return_values_are_serialised(sandbox: Sandbox) -> None:
    r = run(sandbox, "return 'plain';")
    assert r.body == b"plain" and header(r, "content-type").startswith("text/plain")
    r = run(sandbox, "return new Uint8Array([1, 2, 3]);")
    assert r.body == b"\x01\x02\x03" and header(r, "content-type") == "application/octet-stream"
    r = run(sandbox, "return new Response('made', { status: 202, headers: { 'x-r': '1' } });")
    assert (r.status, r.body, header(r, "x-r")) == (202, b"made", "1")
    r = run(sandbox, "return [1, 'two'];")
    assert body(r) == [1, "two"]
    r = run(sandbox, "const x = 1;")
    assert r.status == 204 and r.body == b""


JSON_TEXTS = [
    '{"budget_ms":5,"batch":[[1,"GET","http://h/x?a=1","/x",{"host":"h"},{"a":"1"},{},"127.0.0.1",0]]}',
    ' { "a" : [ 1 , -2 , 0 , 123456789012345 , 1234567890123456 , 1.5 , 2e3 , -0.0 ] } ',
    '{"a":1,"a":2,"b":{"a":3},"__proto__":{"x":1},"0":"zero","10":"ten","2":"two"}',
    r'["caf\u00e9","café","tab\there","q\"uote","\\",null,true,false,[],{},[[[]]]]',
    "[" + ",".join(str(i) for i in range(40)) + "]",
    "[" * 40 + "]" * 40,
    '{"deep":' + '{"d":' * 40 + '1' + '}' * 41,
    '""', '"x"', '0', '-0', '7', 'true', 'null', '[]', '{}',
]
JSON_ERRORS = ["", "{", "[1,]", '{"a":1,}', "01", "1 2", '{"a" 1}', "[1] x", r'"\x"', "nul", "-", "{a:1}"]


def test_json_parse_agrees_with_the_json_spec(sandbox: Sandbox) -> None:
    probe = sandbox.compiler.compile_source(
        "// @mode serverless\nexport default (req) => req.body.map((t) => {"
        " try { const v = JSON.parse(t); return [JSON.stringify(v), Object.is(v, -0),"
        " v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.keys(v) : null,"
        " Object.getPrototypeOf(v ?? {}) === Object.prototype || Array.isArray(v) || typeof v !== 'object'];"
        " } catch (e) { return e.name; } });",
        "json-probe.ts",
    )
    texts = JSON_TEXTS + JSON_ERRORS
    inv = Invocation("POST", "/", headers={"content-type": "application/json"}, body=json.dumps(texts).encode())
    answers = body(sandbox.run_sync(probe, inv))
    for text, answer in zip(texts, answers, strict=True):
        if text in JSON_ERRORS:
            assert answer == "SyntaxError", text
            continue
        value = json.loads(text)
        dumped, negative_zero, keys, plain_prototype = answer
        assert json.loads(dumped) == value, text
        assert negative_zero == (text.strip() in ("-0", "-0.0")), text
        if isinstance(value, dict):  # integer keys first, ascending, then the rest in order
            ints = sorted((k for k in value if k.isdigit()), key=int)
            assert keys == ints + [k for k in value if not k.isdigit()], text
        assert plain_prototype, text


def test_console_is_captured_with_levels(sandbox: Sandbox) -> None:
    r = run(sandbox, "console.log('a', 1); console.warn({ b: 2 }); console.error('c'); return 1;")
    assert [(log.level, log.message) for log in r.logs][:3] == [("log", "a 1"), ("warn", '{"b":2}'), ("error", "c")] or \
        [log.level for log in r.logs] == ["log", "warn", "error"]


LIBRARY = [
    pytest.param(
        "const u = new URL('https://a.example/p/q?x=1&y=2#h');\n"
        "return [u.host, u.pathname, u.searchParams.get('y'), u.hash];",
        ["a.example", "/p/q", "2", "#h"], id="URL",
    ),
    pytest.param(
        "return [new URLSearchParams({ a: '1', b: 'x y' }).toString()];", ["a=1&b=x+y"],
        id="URLSearchParams",
    ),
    pytest.param(
        "const enc = new TextEncoder().encode('héllo');\nreturn [enc.length, new TextDecoder().decode(enc)];",
        [6, "héllo"], id="TextEncoder-TextDecoder",
    ),
    pytest.param("return [btoa('hi'), atob('aGk=')];", ["aGk=", "hi"], id="atob-btoa"),
    pytest.param(
        "return [Buffer.from('hi').toString('hex'), Buffer.from('6869', 'hex').toString(),\n"
        "  Buffer.from('hello').toString('base64'), Buffer.compare(Buffer.from('a'), Buffer.from('b'))];",
        ["6869", "hi", "aGVsbG8=", -1], id="Buffer",
    ),
    pytest.param(
        "const v = { d: [1, { e: 2 }] };\nconst c = structuredClone(v);\nreturn [c, c.d !== v.d];",
        [{"d": [1, {"e": 2}]}, True], id="structuredClone",
    ),
    pytest.param(
        "return [/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(crypto.randomUUID()),\n"
        "  crypto.getRandomValues(new Uint8Array(8)).length];",
        [True, 8], id="crypto",
    ),
    pytest.param("return Object.keys(process.env);", [], id="process.env"),
]


@pytest.mark.parametrize(("src", "expected"), LIBRARY)
def test_web_and_node_library(sandbox: Sandbox, src: str, expected: object) -> None:
    assert body(run(sandbox, src)) == expected


def test_node_crypto_digests(sandbox: Sandbox) -> None:
    src = """
const c = require('node:crypto');
return {
  s1: c.createHash('sha1').update('abc').digest('hex'),
  s512: c.createHash('sha512').update('a').update('bc').digest('base64'),
  h: c.createHmac('sha256', 'k').update('m').digest('hex'),
  rb: c.randomBytes(16).length,
  eq: c.timingSafeEqual(Buffer.from('ab'), Buffer.from('ab')),
};
"""
    import base64

    assert body(run(sandbox, src)) == {
        "s1": hashlib.sha1(b"abc").hexdigest(),
        "s512": base64.b64encode(hashlib.sha512(b"abc").digest()).decode(),
        "h": hmac.new(b"k", b"m", "sha256").hexdigest(),
        "rb": 16,
        "eq": True,
    }


def test_webhook_hmac_example_runs_unchanged(sandbox: Sandbox) -> None:
    artefact = sandbox.compiler.compile_file(REPO_ROOT / "scripts", "webhook.js")
    payload = b'{"event":"push","ref":"main"}'
    sig = "sha256=" + hmac.new(b"shhh-test", payload, "sha256").hexdigest()
    good = Invocation("POST", "/webhook", headers={"content-type": "application/json", "x-hub-signature-256": sig}, body=payload)
    r = sandbox.run_sync(artefact, good)
    assert (r.status, body(r)) == (200, {"accepted": True, "payload": {"event": "push", "ref": "main"}})
    bad = Invocation("POST", "/webhook", headers={"content-type": "application/json", "x-hub-signature-256": "sha256=00"}, body=payload)
    assert sandbox.run_sync(artefact, bad).status == 401


# -- isolation and persistence ---------------------------------------------------------------


def test_serverless_starts_fresh_every_request(sandbox: Sandbox) -> None:
    artefact = sandbox.compiler.compile_source(
        "// @mode serverless\nglobalThis.n = (globalThis.n || 0) + 1;\nreturn { n: globalThis.n };", "fresh.ts"
    )
    assert [body(sandbox.run_sync(artefact, Invocation("GET", "/")))["n"] for _ in range(3)] == [1, 1, 1]


# A pure top level (no clock, randomness, host or log) with state of its own; each request
# mutates that state, the global object and a few hundred KiB of fresh memory.
IMAGED = """// @mode serverless
const seen = [];
const table = new Map([['a', 1], ['b', 2]]);
export default () => {
  seen.push(1);
  table.set('c', (table.get('c') || 0) + 1);
  globalThis.leak = (globalThis.leak || 0) + 1;
  const junk = new Uint8Array(300 * 1024).fill(7);
  return { seen: seen.length, c: table.get('c'), leak: globalThis.leak, junk: junk[5] };
};
"""


def _imaged(sandbox: Sandbox, artefact: Artefact) -> bool:
    return sandbox.images.lookup(artefact)[0] is not None


def test_a_pure_serverless_script_starts_from_its_image_and_fresh_every_time(sandbox: Sandbox) -> None:
    artefact = sandbox.compiler.compile_source(IMAGED, "imaged.ts")
    answers = [body(sandbox.run_sync(artefact, Invocation("GET", "/"))) for _ in range(20)]
    assert _imaged(sandbox, artefact)
    assert answers == [{"seen": 1, "c": 1, "leak": 1, "junk": 7}] * 20


async def test_serverless_requests_from_an_image_share_nothing_when_concurrent(sandbox: Sandbox) -> None:
    artefact = sandbox.compiler.compile_source(IMAGED, "imaged-async.ts")
    first = await sandbox.invoke(artefact, Invocation("GET", "/"))
    results = await asyncio.gather(*(sandbox.invoke(artefact, Invocation("GET", "/")) for _ in range(16)))
    assert _imaged(sandbox, artefact)
    assert {r.body for r in results} == {first.body}


@pytest.mark.parametrize(
    ("top", "varies"),
    [
        ("const at = Date.now() + performance.now();", True),
        ("const at = Math.random();", True),
        ("const at = crypto.randomUUID();", True),
        ("const at = 1; console.log('loading');", False),
    ],
)
def test_an_impure_top_level_still_runs_in_every_request(sandbox: Sandbox, top: str, varies: bool) -> None:
    artefact = sandbox.compiler.compile_source(
        f"// @mode serverless\n{top}\nexport default () => ({{ at }});", f"impure{next(_names)}.ts"
    )
    results = []
    for _ in range(3):
        results.append(sandbox.run_sync(artefact, Invocation("GET", "/")))
        time.sleep(0.002)
    assert not _imaged(sandbox, artefact)
    assert len({r.body for r in results}) == (3 if varies else 1)
    if not varies:
        assert all([(log.level, log.message) for log in r.logs] == [("log", "loading")] for r in results)


def test_serverless_images_can_be_turned_off() -> None:
    from tests.support import settings_for_tests

    plain = Sandbox(settings_for_tests(serverless_images=0))
    try:
        artefact = plain.compiler.compile_source(IMAGED, "not-imaged.ts")
        answers = [body(plain.run_sync(artefact, Invocation("GET", "/"))) for _ in range(3)]
        assert answers == [{"seen": 1, "c": 1, "leak": 1, "junk": 7}] * 3
        assert not _imaged(plain, artefact)
    finally:
        plain.close()


def test_images_are_kept_within_their_byte_budget() -> None:
    from tests.support import settings_for_tests

    small = Sandbox(settings_for_tests(serverless_image_bytes=64 * 1024))
    try:
        tiny = small.compiler.compile_source("// @mode serverless\nexport default () => 1;", "tiny.ts")
        big = small.compiler.compile_source(
            "// @mode serverless\nconst rows = Array.from({ length: 50000 }, (_, i) => ({ i }));\n"
            "export default () => rows.length;",
            "big.ts",
        )
        assert [small.run_sync(big, Invocation("GET", "/")).body for _ in range(2)] == [b"50000"] * 2
        assert [small.run_sync(tiny, Invocation("GET", "/")).body for _ in range(2)] == [b"1"] * 2
        assert _imaged(small, tiny) and not _imaged(small, big)
    finally:
        small.close()


def test_a_changed_script_gets_a_new_image(sandbox: Sandbox) -> None:
    old = sandbox.compiler.compile_source("// @mode serverless\nconst v = 'old';\nexport default () => v;", "changing.ts")
    assert sandbox.run_sync(old, Invocation("GET", "/")).body == b"old"
    new = sandbox.compiler.compile_source("// @mode serverless\nconst v = 'new';\nexport default () => v;", "changing.ts")
    assert [sandbox.run_sync(new, Invocation("GET", "/")).body for _ in range(2)] == [b"new", b"new"]
    assert _imaged(sandbox, new)


def test_worker_keeps_its_globals(sandbox: Sandbox) -> None:
    artefact = sandbox.compiler.compile_file(REPO_ROOT / "scripts", "counter.ts")
    counts = [body(sandbox.run_sync(artefact, Invocation("GET", "/counter")))["count"] for _ in range(3)]
    assert counts[1:] == [counts[0] + 1, counts[0] + 2]


def test_random_differs_between_serverless_instances(sandbox: Sandbox) -> None:
    artefact = sandbox.compiler.compile_source("return { r: Math.random(), u: crypto.randomUUID() };", "rng.ts")
    seen = [body(sandbox.run_sync(artefact, Invocation("GET", "/"))) for _ in range(3)]
    assert len({s["r"] for s in seen}) == 3 and len({s["u"] for s in seen}) == 3


# -- limits and failures ---------------------------------------------------------------------


def test_infinite_loop_is_stopped_at_its_timeout(sandbox: Sandbox) -> None:
    artefact = sandbox.compiler.compile_source("// @timeout 200\nwhile (true) {}", "spin.ts")
    started = time.monotonic()
    with pytest.raises(ScriptTimeout) as info:
        sandbox.run_sync(artefact, Invocation("GET", "/"))
    elapsed_ms = (time.monotonic() - started) * 1000
    assert info.value.limit_ms == 200
    assert 190 <= elapsed_ms < 200 + 100, elapsed_ms


def test_worker_survives_a_timeout(sandbox: Sandbox) -> None:
    src = "// @mode worker\n// @timeout 100\nlet n = 0;\nexport default (req) => { n++; if (req.method === 'POST') while (true) {} return { n }; };"
    artefact = sandbox.compiler.compile_source(src, "spinworker.ts")
    assert body(sandbox.run_sync(artefact, Invocation("GET", "/")))["n"] == 1
    with pytest.raises(ScriptTimeout):
        sandbox.run_sync(artefact, Invocation("POST", "/"))
    assert body(sandbox.run_sync(artefact, Invocation("GET", "/")))["n"] >= 2


def test_memory_bomb_is_a_clean_error(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptError) as info:
        run(sandbox, "const keep = []; while (true) keep.push(new Array(1e5).fill(Math.random()));")
    assert "memory" in str(info.value).lower()


def test_swallowed_out_of_memory_still_ends_the_run(sandbox: Sandbox) -> None:
    src = "const keep = []; while (true) { try { keep.push(new Array(1e6).fill(1)); } catch (e) {} }"
    with pytest.raises(ScriptMemoryError):
        run(sandbox, src, timeout_ms=10_000)


def test_worker_is_rebuilt_after_a_trap(sandbox: Sandbox) -> None:
    src = "// @mode worker\nlet n = 0;\nconst keep = [];\nexport default (req) => { n++; if (req.method === 'POST') while (true) { try { keep.push(new Array(1e6).fill(1)); } catch {} } return { n }; };"
    artefact = sandbox.compiler.compile_source(src, "bombworker.ts")
    sandbox.run_sync(artefact, Invocation("GET", "/"))
    with pytest.raises(ScriptMemoryError):
        sandbox.run_sync(artefact, Invocation("POST", "/"))
    assert body(sandbox.run_sync(artefact, Invocation("GET", "/")))["n"] == 1


def test_deep_recursion_is_a_range_error(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptError) as info:
        run(sandbox, "function f(n) { return f(n + 1) + 1; }\nreturn f(0);")
    assert info.value.name == "RangeError"
    caught = run(sandbox, "function f(n) { return f(n + 1) + 1; }\ntry { f(0); } catch (e) { return { caught: e.name }; }")
    assert body(caught) == {"caught": "RangeError"}


def test_throw_reports_the_original_line(sandbox: Sandbox) -> None:
    src = "interface A { x: number }\nconst a: A = { x: 1 };\n\nthrow new Error('boom ' + a.x);\n"
    with pytest.raises(ScriptError) as info:
        run(sandbox, src)
    assert info.value.message == "boom 1"
    assert info.value.line == 4


def test_rejected_promise_is_a_script_error(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptError) as info:
        run(sandbox, "module.exports = async () => { await null; return Promise.reject(new TypeError('nope')); };")
    assert (info.value.name, info.value.message) == ("TypeError", "nope")


def test_syntax_error_names_the_line(sandbox: Sandbox) -> None:
    with pytest.raises(CompileError) as info:
        sandbox.compiler.compile_source("const a = 1;\nconst b = ;\nreturn a;", "broken.ts")
    assert info.value.line == 2


# -- async host operations -------------------------------------------------------------------


def test_pending_operations_run_concurrently(sandbox: Sandbox) -> None:
    src = "const t0 = Date.now();\nawait Promise.all([new Promise(r => setTimeout(r, 300)), new Promise(r => setTimeout(r, 300))]);\nreturn { ms: Date.now() - t0 };"
    started = time.monotonic()
    r = run(sandbox, src)
    elapsed = time.monotonic() - started
    assert 0.29 <= elapsed < 0.45, elapsed
    assert 290 <= body(r)["ms"] < 450


def test_cleared_timer_never_fires(sandbox: Sandbox) -> None:
    src = "let fired = false;\nconst t = setTimeout(() => { fired = true; }, 50);\nclearTimeout(t);\nawait new Promise(r => setTimeout(r, 100));\nreturn { fired };"
    assert body(run(sandbox, src)) == {"fired": False}


def test_wexec_run_prints_the_response() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "run", str(REPO_ROOT / "scripts" / "hello.ts")],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    status, rest = out.split("\n", 1)
    assert status == "200"
    assert json.loads(rest.split("\n\n", 1)[1])["message"] == "Hello from wexec!"


def test_a_failed_run_keeps_what_it_logged(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptError) as info:
        run(sandbox, "console.warn('about to fail');\nthrow new Error('failed');")
    assert [(log.level, log.message) for log in info.value.logs] == [("warn", "about to fail")]


def test_serverless_top_level_output_belongs_to_the_request(sandbox: Sandbox) -> None:
    ok = run(sandbox, "// @mode serverless\nconsole.info('loading');\nexport default () => ({ ok: 1 });")
    assert [(log.level, log.message) for log in ok.logs] == [("info", "loading")]
    with pytest.raises(ScriptError) as info:
        run(sandbox, "// @mode serverless\nconsole.warn('loading');\nthrow new TypeError('at load');\nexport default () => 1;")
    assert info.value.name == "TypeError" and info.value.line == 3
    assert [(log.level, log.message) for log in info.value.logs] == [("warn", "loading")]


async def test_a_worker_request_is_never_failed_for_a_scheduling_decision(sandbox: Sandbox) -> None:
    src = "// @mode worker\nlet n = 0;\nexport default (req) => { n++; const ms = +(req.query.ms || 0); const t = Date.now(); while (Date.now() - t < ms) {} return { n }; };"
    artefact = sandbox.compiler.compile_source(src, "paced.ts")
    for _ in range(12):  # quick requests, then ones far slower than the first
        await sandbox.invoke(artefact, Invocation("GET", "/"), timeout_ms=5_000)
    for i, ms in enumerate(("8", "50", "0")):  # each completes, by its own limits only
        answer = await sandbox.invoke(artefact, Invocation("GET", "/", query={"ms": ms}), timeout_ms=5_000)
        assert body(answer) == {"n": 13 + i}


@pytest.fixture()
def crossings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many requests each batched crossing into a guest starts, as the test goes on."""
    sizes: list[int] = []
    real = WorkerDriver._cross_batch

    async def counted(self: WorkerDriver, batch: list) -> list:
        sizes.append(len(batch))
        return await real(self, batch)

    monkeypatch.setattr(WorkerDriver, "_cross_batch", counted)
    return sizes


async def test_concurrent_worker_requests_share_one_crossing(sandbox: Sandbox, crossings: list[int]) -> None:
    src = "// @mode worker\nlet n = 0;\nexport default (req) => ({ n: ++n, i: req.query.i, body: req.rawBody });"
    artefact = sandbox.compiler.compile_source(src, "batched.ts")
    await sandbox.invoke(artefact, Invocation("GET", "/"), timeout_ms=5_000)  # the worker starts
    sizes = crossings
    sizes.clear()  # the first request's
    results = await asyncio.gather(*(
        sandbox.invoke(artefact, Invocation("POST", "/", query={"i": str(i)}, body=b"x" * i), timeout_ms=5_000)
        for i in range(10)
    ))
    assert [(body(r)["i"], body(r)["body"]) for r in results] == [(str(i), "x" * i) for i in range(10)]
    assert sorted(body(r)["n"] for r in results) == list(range(2, 12))
    assert sizes == [10]


async def test_a_slow_request_in_a_batch_completes_and_so_do_the_rest(sandbox: Sandbox) -> None:
    src = "// @mode worker\nlet n = 0;\nexport default (req) => { n++; if (req.method === 'POST') { const t = Date.now(); while (Date.now() - t < 50) {} } return { n, i: req.query.i }; };"
    artefact = sandbox.compiler.compile_source(src, "batched-runaway.ts")
    await sandbox.invoke(artefact, Invocation("GET", "/"), timeout_ms=5_000)
    results = await asyncio.gather(*(
        sandbox.invoke(artefact, Invocation("POST" if i == 1 else "GET", "/", query={"i": str(i)}), timeout_ms=5_000)
        for i in range(4)
    ))
    assert [body(r)["i"] for r in results] == ["0", "1", "2", "3"]
    assert sorted(body(r)["n"] for r in results) == [2, 3, 4, 5]


async def test_a_burst_is_cut_into_batches_and_every_request_answers(
    sandbox: Sandbox, crossings: list[int]
) -> None:
    src = "// @mode worker\nexport default (req) => ({ i: req.query.i });"
    artefact = sandbox.compiler.compile_source(src, "batched-burst.ts")
    await sandbox.invoke(artefact, Invocation("GET", "/"), timeout_ms=5_000)
    sizes = crossings
    sizes.clear()  # the first request's
    n = BATCH_MAX + 44
    results = await asyncio.gather(*(
        sandbox.invoke(artefact, Invocation("GET", "/", query={"i": str(i)}), timeout_ms=5_000) for i in range(n)
    ))
    assert [body(r)["i"] for r in results] == [str(i) for i in range(n)]
    assert sizes == [BATCH_MAX, 44]


async def test_a_worker_request_with_a_tight_timeout_times_out_alone(sandbox: Sandbox) -> None:
    src = "// @mode worker\nexport default (req) => { if (req.method === 'POST') for (;;) {} return { ok: 1 }; };"
    artefact = sandbox.compiler.compile_source(src, "tight.ts")
    await sandbox.invoke(artefact, Invocation("GET", "/"), timeout_ms=3)
    results = await asyncio.gather(
        sandbox.invoke(artefact, Invocation("POST", "/"), timeout_ms=3),
        sandbox.invoke(artefact, Invocation("GET", "/"), timeout_ms=3),
        return_exceptions=True,
    )
    assert isinstance(results[0], ScriptTimeout)  # its own limit: a 504
    assert body(results[1]) == {"ok": 1}  # the next crossing, not stopped with it


def test_wexec_run_fills_route_parameters_from_the_path() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "run", str(REPO_ROOT / "scripts" / "api" / "users" / "[id].ts"),
         "--path", "/api/users/7", "--query", "full=1"],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout
    answer = json.loads(out.split("\n\n", 1)[1])
    assert answer["user"] == {"id": "7", "name": "user-7"} and answer["query"] == {"full": "1"}


async def test_a_timed_out_run_on_a_guest_thread_is_freed_safely(sandbox: Sandbox) -> None:
    src = "// @timeout 150\nawait new Promise((r) => setTimeout(r, 10));\nwhile (true) {}"
    artefact = sandbox.compiler.compile_source(src, "spin-after-await.ts")
    for _ in range(3):
        started = time.monotonic()
        with pytest.raises(ScriptTimeout):
            await sandbox.invoke(artefact, Invocation("GET", "/"))
        assert time.monotonic() - started < 0.15 + 0.1
    assert (await sandbox.invoke(sandbox.compiler.compile_source(SHAPES["top-level return"], "after.ts"),
                                 Invocation("GET", "/"))).status == 200


# -- streamed responses ----------------------------------------------------------------------

SLEEP = "const sleep = (ms) => new Promise((r) => setTimeout(r, ms));\n"


async def gather(result: Result) -> list[tuple[float, bytes]]:
    """A streamed body's chunks, each with the moment it arrived."""
    assert result.stream is not None and result.body == b""
    return [(time.monotonic(), chunk) async for chunk in result.stream]


# Serverless requests after a script's first run on the event loop, where most end in one
# crossing without a driver; each of these goes on past it, and must end as on a driver.
HANDED_OVER = {
    "logs": ("export default () => { console.warn('w'); return { ok: 1 }; };", 200),
    "operations": (SLEEP + "export default async () => { await sleep(5); return { ok: 1 }; };", 200),
    "stream": ("export default async function* () { yield 'a'; yield 'b'; };", 200),
    "throw": ("export default () => {\n  throw new TypeError('bad');\n};", "TypeError"),
    "out of memory": ("export default () => { const a = []; for (;;) a.push(new Array(1e5).fill(1)); };", "InternalError"),
    "memory cap": (
        "const fill = (a) => { for (;;) a.push(new Array(1e5).fill(1)); };\n"
        + "export default () => { const a = []; try { fill(a); } catch {} fill(a); };",
        "MemoryError",
    ),
    "recursion": ("const f = (n) => f(n + 1) + 1;\nexport default () => f(0);", "RangeError"),
    "impure top level": ("const t = Date.now();\nexport default () => ({ ok: t > 0 });", 200),
}


@pytest.mark.parametrize("case", list(HANDED_OVER))
async def test_serverless_requests_that_go_on_past_their_first_crossing(sandbox: Sandbox, case: str) -> None:
    source, expected = HANDED_OVER[case]
    artefact = sandbox.compiler.compile_source(source, f"handover{next(_names)}.ts")
    outcomes = []
    for _ in range(3):  # the first run makes the image; the others start on the event loop
        try:
            result = await sandbox.invoke(artefact, Invocation("GET", "/"))
        except ScriptError as exc:
            outcomes.append((exc.name, exc.line, [log.message for log in exc.logs]))
            continue
        text = b"".join([c async for c in result.stream]) if result.stream else result.body
        outcomes.append((result.status, text, [log.message for log in result.logs]))
    assert outcomes[0] == outcomes[1] == outcomes[2], outcomes
    assert outcomes[0][0] == expected
    if case == "logs":
        assert outcomes[0][2] == ["w"]
    if case == "stream":
        assert outcomes[0][1] == b"ab"
    if case == "throw":
        assert outcomes[0][1] == 2


async def test_a_serverless_request_that_outruns_the_slice_reruns_on_a_thread(sandbox: Sandbox) -> None:
    artefact = sandbox.compiler.compile_source(
        "// @timeout 300\nexport default (req) => { if (req.query.spin) { const t = Date.now(); while (Date.now() - t < 50) {} } return { ok: 1 }; };",
        "slice.ts",
    )
    assert (await sandbox.invoke(artefact, Invocation("GET", "/"))).status == 200
    spun = await sandbox.invoke(artefact, Invocation("GET", "/?spin=1", query={"spin": "1"}))
    assert body(spun) == {"ok": 1}
    slow = sandbox._slow  # type: ignore[attr-defined]
    assert not slow.inline(artefact.key)  # its next requests go to the threads...
    await asyncio.sleep(SlowScripts.RETRY_S)
    assert (await sandbox.invoke(artefact, Invocation("GET", "/"))).status == 200
    assert artefact.key not in slow._until  # ...until one fits the slice again


def test_a_script_that_keeps_outrunning_the_slice_waits_longer_each_time() -> None:
    slow = SlowScripts()
    waits = []
    for _ in range(12):
        before = time.monotonic()
        slow.outran("k")
        waits.append(slow._until["k"][0] - before)
        assert not slow.inline("k")
    assert waits[0] < waits[1] < waits[2] and abs(waits[-1] - SlowScripts.RETRY_MAX_S) < 1
    slow.kept_to("k")
    assert slow.inline("k") and slow.count() == 0


async def test_a_generator_streams_each_chunk_as_it_is_produced(sandbox: Sandbox) -> None:
    src = SLEEP + (
        "export default async function* () {\n"
        "  yield 'first ';\n  await sleep(100);\n  yield new TextEncoder().encode('second');\n}\n"
    )
    artefact = sandbox.compiler.compile_source(src, "gen.ts")
    started = time.monotonic()
    result = await sandbox.invoke(artefact, Invocation("GET", "/"))
    head_at = time.monotonic()
    got = await gather(result)
    assert result.status == 200 and head_at - started < 0.08
    assert [chunk for _, chunk in got] == [b"first ", b"second"]
    assert got[0][0] - head_at < 0.05
    assert 0.09 <= got[1][0] - got[0][0] < 0.2


async def test_a_readable_stream_in_a_response_keeps_its_head(sandbox: Sandbox) -> None:
    src = SLEEP + (
        "let n = 0;\n"
        "const body = new ReadableStream({\n"
        "  start(c) { c.enqueue('a'); },\n"
        "  async pull(c) { await sleep(10); n++; if (n < 3) c.enqueue(new Uint8Array([48 + n])); else c.close(); },\n"
        "});\n"
        "return new Response(body, { status: 201, headers: { 'content-type': 'text/plain', 'x-s': '1' } });\n"
    )
    result = await sandbox.invoke(sandbox.compiler.compile_source(src, "rs.ts"), Invocation("GET", "/"))
    assert (result.status, header(result, "x-s"), header(result, "content-type")) == (201, "1", "text/plain")
    assert b"".join(chunk for _, chunk in await gather(result)) == b"a12"


async def test_res_send_of_an_async_iterable_streams_with_res_headers(sandbox: Sandbox) -> None:
    src = (
        "async function* lines() { for (let i = 0; i < 3; i++) { await null; yield `line ${i}\\n`; } }\n"
        "res.status(202).type('text');\nres.send(lines());\n"
    )
    result = await sandbox.invoke(sandbox.compiler.compile_source(src, "send.ts"), Invocation("GET", "/"))
    assert result.status == 202 and header(result, "content-type").startswith("text/plain")
    assert b"".join(chunk for _, chunk in await gather(result)) == b"line 0\nline 1\nline 2\n"


async def test_a_stream_that_throws_ends_with_its_error_after_what_it_sent(sandbox: Sandbox) -> None:
    src = SLEEP + (
        "export default async function* () {\n"
        "  console.log('streaming');\n  yield 'partial';\n  await sleep(20);\n"
        "  throw new RangeError('midway');\n}\n"
    )
    result = await sandbox.invoke(sandbox.compiler.compile_source(src, "throws.ts"), Invocation("GET", "/"))
    assert result.stream is not None
    assert await result.stream.__anext__() == b"partial"
    with pytest.raises(ScriptError) as info:
        await result.stream.__anext__()
    assert (info.value.name, info.value.message) == ("RangeError", "midway")
    assert [log.message for log in result.logs] == ["streaming"]


async def test_res_write_left_open_streams_until_res_end(sandbox: Sandbox) -> None:
    src = (
        "res.setHeader('content-type', 'text/event-stream');\n"
        "res.write('data: 1\\n\\n');\n"
        "setTimeout(() => {\n  res.write('data: 2\\n\\n');\n"
        "  setTimeout(() => res.end('data: 3\\n\\n'), 60);\n}, 60);\n"
    )
    result = await sandbox.invoke(sandbox.compiler.compile_source(src, "sse.ts"), Invocation("GET", "/"))
    head_at = time.monotonic()
    assert header(result, "content-type") == "text/event-stream"
    got = await gather(result)
    assert b"".join(chunk for _, chunk in got) == b"data: 1\n\ndata: 2\n\ndata: 3\n\n"
    assert got[0] == (got[0][0], b"data: 1\n\n") and got[0][0] - head_at < 0.04
    assert got[-1][0] - got[0][0] >= 0.1


async def test_an_async_handler_streams_what_it_writes_between_awaits(sandbox: Sandbox) -> None:
    src = SLEEP + (
        "export default async (req, res) => {\n"
        "  res.write('x');\n  await sleep(50);\n  res.write(new Uint8Array([121]));\n"
        "  await sleep(50);\n  res.end();\n};\n"
    )
    started = time.monotonic()
    result = await sandbox.invoke(sandbox.compiler.compile_source(src, "writes.ts"), Invocation("GET", "/"))
    got = await gather(result)
    assert got[0][1] == b"x" and got[0][0] - started < 0.04
    assert b"".join(chunk for _, chunk in got) == b"xy"


async def test_a_written_response_ends_when_nothing_is_left_to_write(sandbox: Sandbox) -> None:
    src = "res.write('a');\nsetTimeout(() => res.write('b'), 30);\n"
    result = await sandbox.invoke(sandbox.compiler.compile_source(src, "open.ts"), Invocation("GET", "/"))
    assert b"".join(chunk for _, chunk in await gather(result)) == b"ab"


async def test_res_write_outrunning_its_client_fails_instead_of_filling_memory(
    sandbox: Sandbox,
) -> None:
    src = "const mib = 'x'.repeat(1 << 20);\nres.write(mib);\nsetInterval(() => res.write(mib), 1);\n"
    result = await sandbox.invoke(sandbox.compiler.compile_source(src, "flood.ts"), Invocation("GET", "/"))
    assert result.stream is not None
    await asyncio.sleep(0.3)  # a client that reads nothing meanwhile
    assert result.stream.buffered <= STREAM_OVERFLOW_BYTES + (4 << 20)
    with pytest.raises(ScriptError) as info:
        async for _ in result.stream:
            pass
    assert info.value.name == "StreamOverflow" and "too slowly" in info.value.message


def test_writes_ended_in_the_same_crossing_are_one_response(sandbox: Sandbox) -> None:
    result = run(sandbox, "res.write('a');\nres.write(new TextEncoder().encode('b'));\nres.end('c');\n")
    assert result.stream is None and result.body == b"abc"
    result = run(sandbox, "res.write('only');\n")
    assert result.stream is None and result.body == b"only"


async def test_the_timeout_covers_the_whole_stream(sandbox: Sandbox) -> None:
    src = "// @timeout 300\n" + SLEEP + "export default async function* () { while (true) { yield '.'; await sleep(50); } }\n"
    artefact = sandbox.compiler.compile_source(src, "endless.ts")
    started = time.monotonic()
    result = await sandbox.invoke(artefact, Invocation("GET", "/"))
    assert result.stream is not None
    sent = b""
    with pytest.raises(ScriptTimeout):
        async for chunk in result.stream:
            sent += chunk
    assert 0.29 <= time.monotonic() - started < 0.45
    assert 4 <= len(sent) <= 7


async def test_a_worker_serves_other_requests_while_it_streams(sandbox: Sandbox) -> None:
    src = "// @mode worker\n" + SLEEP + (
        "let served = 0;\n"
        "export default (req) => {\n"
        "  if (req.method === 'POST') return (async function* () { yield 'a'; await sleep(200); yield 'b'; })();\n"
        "  return { served: ++served };\n};\n"
    )
    artefact = sandbox.compiler.compile_source(src, "streamworker.ts")
    streaming = await sandbox.invoke(artefact, Invocation("POST", "/"))
    started = time.monotonic()
    answers = [body(await sandbox.invoke(artefact, Invocation("GET", "/")))["served"] for _ in range(3)]
    assert answers == [1, 2, 3] and time.monotonic() - started < 0.15
    assert b"".join(chunk for _, chunk in await gather(streaming)) == b"ab"


async def test_batched_worker_requests_may_stream_and_wait_on_timers(sandbox: Sandbox) -> None:
    src = "// @mode worker\n" + SLEEP + (
        "export default async (req) => {\n"
        "  const i = Number(req.query.i);\n"
        "  if (i % 3 === 0) return (async function* () { yield `s${i}-`; await sleep(30); yield 'end'; })();\n"
        "  if (i % 3 === 1) { await sleep(20 + i); return { waited: i }; }\n"
        "  return { now: i };\n};\n"
    )
    artefact = sandbox.compiler.compile_source(src, "batchmix.ts")
    for _ in range(12):
        await sandbox.invoke(artefact, Invocation("GET", "/", query={"i": "2"}), timeout_ms=5_000)
    results = await asyncio.gather(*(
        sandbox.invoke(artefact, Invocation("GET", "/", query={"i": str(i)}), timeout_ms=5_000) for i in range(9)
    ))
    for i, result in enumerate(results):
        if i % 3 == 0:
            assert b"".join([chunk async for chunk in result.stream]) == f"s{i}-end".encode()
        else:
            assert body(result) == ({"waited": i} if i % 3 == 1 else {"now": i})


async def test_a_fast_stream_is_flushed_while_it_runs(sandbox: Sandbox) -> None:
    src = "export default async function* () { for (let i = 0; i < 64; i++) yield 'x'.repeat(4096); }\n"
    result = await sandbox.invoke(sandbox.compiler.compile_source(src, "fast.ts"), Invocation("GET", "/"))
    got = [chunk for _, chunk in await gather(result)]
    assert len(got) >= 3 and b"".join(got) == b"x" * 4096 * 64


async def test_a_stream_waits_for_a_slow_client(sandbox: Sandbox) -> None:
    from runtime.sandbox.driver import STREAM_BUFFER_BYTES

    src = "// @timeout 5000\nexport default async function* () { const c = 'x'.repeat(16384); for (;;) yield c; }\n"
    result = await sandbox.invoke(sandbox.compiler.compile_source(src, "firehose.ts"), Invocation("GET", "/"))
    stream = result.stream
    assert stream is not None
    most, got = 0, 0
    for _ in range(25):  # a client that takes one chunk every 20 ms
        got += len(await stream.__anext__())
        most = max(most, stream.buffered)
        await asyncio.sleep(0.02)
    await stream.aclose()
    # without backpressure the script would have queued hundreds of megabytes by now
    assert got >= 25 * 16384
    assert most <= STREAM_BUFFER_BYTES + 2 * 64 * 1024


async def test_a_stream_of_other_values_is_a_type_error(sandbox: Sandbox) -> None:
    src = "export default async function* () { yield 'ok'; yield { not: 'bytes' }; }\n"
    result = await sandbox.invoke(sandbox.compiler.compile_source(src, "badchunk.ts"), Invocation("GET", "/"))
    assert result.stream is not None
    with pytest.raises(ScriptError) as info:
        async for _ in result.stream:
            pass
    assert info.value.name == "TypeError"


def test_a_synchronous_run_gathers_the_stream(sandbox: Sandbox) -> None:
    r = run(sandbox, SLEEP + "export default async function* () { yield 'a'; await sleep(10); yield 'b'; }\n")
    assert (r.status, r.body, r.stream) == (200, b"ab", None)


async def test_a_worker_lets_go_of_streams_nobody_reads(sandbox: Sandbox) -> None:
    # Each stream holds 200 kB; were dropped streams kept parked, 300 would pass the 32 MiB cap.
    src = "// @mode worker\n" + SLEEP + (
        "export default () => (async function* () {\n"
        "  const ballast = 'x'.repeat(200000) + Math.random();\n"
        "  for (;;) { yield ballast.slice(0, 1); await sleep(1000); }\n})();\n"
    )
    artefact = sandbox.compiler.compile_source(src, "dropped.ts")
    for _ in range(300):
        result = await sandbox.invoke(artefact, Invocation("GET", "/"), timeout_ms=10_000)
        assert result.stream is not None and await result.stream.__anext__() == b"x"
        await result.stream.aclose()
        await asyncio.sleep(0)


async def test_a_workers_top_level_is_held_to_its_tenants_timeout_cap() -> None:
    from tests.support import settings_for_tests

    capped = Sandbox(settings_for_tests(tenant_max_timeout_ms={"alice/1": 300}))
    try:
        artefact = capped.compiler.compile_source(
            "// @mode worker\n// @timeout 0\nwhile (true) {}\nexport default () => 1;", "spin-at-load.ts"
        )
        started = time.monotonic()
        with pytest.raises(ScriptTimeout):
            # the tenant's 300 ms, not @timeout 0 (unlimited)
            await asyncio.wait_for(capped.invoke(artefact, Invocation("GET", "/"), tenant="alice/1"), 10)
        assert time.monotonic() - started < 3.0
    finally:
        capped.close()
