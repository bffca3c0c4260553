"""The guest engine honours guest/ABI.md, driven through wasmtime-py's public API.

These tests build the engine with build/guest.py (cached in $WEXEC_CACHE or ~/.cache/wexec)
and talk to it the way the host does: envelopes in the input buffer, one export per crossing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
import time
from pathlib import Path

import pytest
import wasmtime

from runtime.buildtools import load_build_module
from runtime.config import REPO_ROOT
from runtime.host.registry import Registry
from tests.support import settings_for_tests

REPO = REPO_ROOT
CACHE = settings_for_tests().cache_dir
build = load_build_module("guest")
HOST_CALLS = Registry(settings_for_tests()).calls


def host_call(name: str, data: bytes) -> bytes:
    return HOST_CALLS[name](data)


class Engine:
    """One compiled engine module and a linker providing WASI and wexec.host_call."""

    def __init__(self, path: Path) -> None:
        self.engine = wasmtime.Engine()
        self.module = wasmtime.Module.from_file(self.engine, str(path))
        self.linker = wasmtime.Linker(self.engine)
        self.linker.define_wasi()
        i32 = wasmtime.ValType.i32()
        self.linker.define_func(
            "wexec",
            "host_call",
            wasmtime.FuncType([i32] * 6, [i32]),
            self._host_call,
            access_caller=True,
        )

    @staticmethod
    def _host_call(caller, name_ptr, name_len, in_ptr, in_len, out_ptr, out_cap):
        mem = caller.get("memory")
        name = bytes(mem.read(caller, name_ptr, name_ptr + name_len)).decode()
        data = bytes(mem.read(caller, in_ptr, in_ptr + in_len))
        try:
            out, sign = host_call(name, data), 1
        except (KeyError, ValueError) as e:  # the guest turns the message into a JS Error
            out, sign = str(e).encode(), -1
        out = out[:out_cap]
        mem.write(caller, out, out_ptr)
        return sign * len(out)


class Instance:
    """A guest instance; `memory` lets a test start it from another's memory (a snapshot)."""

    def __init__(self, engine: Engine, memory: bytes | None = None) -> None:
        self.store = wasmtime.Store(engine.engine)
        self.store.set_wasi(wasmtime.WasiConfig())
        self.exports = engine.linker.instantiate(self.store, engine.module).exports(self.store)
        self.mem = self.exports["memory"]
        if memory is None:
            self.exports["_initialize"](self.store)
        else:
            missing = len(memory) - self.mem.data_len(self.store)
            if missing > 0:
                self.mem.grow(self.store, missing // 65536)
            self.mem.write(self.store, memory, 0)
        self.io = self.exports["wx_io"](self.store)

    def init(self) -> Instance:
        assert self.exports["wx_init"](self.store) == 0, self.output()
        return self

    def io_block(self) -> tuple[int, ...]:
        return struct.unpack("<5I", bytes(self.mem.read(self.store, self.io, self.io + 20)))

    def output(self) -> tuple[dict, bytes]:
        _, _, ptr, json_len, blob_len = self.io_block()
        raw = bytes(self.mem.read(self.store, ptr, ptr + json_len + blob_len))
        return json.loads(raw[:json_len]), raw[json_len:]

    def call(self, export: str, header: dict, blob: bytes = b"") -> tuple[int, dict, bytes]:
        js = json.dumps(header).encode()
        in_ptr, in_cap = self.io_block()[:2]
        if len(js) + len(blob) > in_cap:
            assert self.exports["wx_reserve"](self.store, len(js) + len(blob)) == 0
            in_ptr = self.io_block()[0]
        self.mem.write(self.store, js + blob, in_ptr)
        rc = self.exports[export](self.store, len(js), len(blob))
        return (rc, *self.output())

    def compile(self, source: str, filename: str = "api/t.js") -> dict | bytes:
        rc, out, blob = self.call("wx_compile", {"filename": filename}, source.encode())
        assert rc == 0, out
        if "error" in out:
            return out
        ref = out["bytecode"]
        return blob[ref["off"] : ref["off"] + ref["len"]]

    def load(self, source: str, env: dict | None = None, mem_limit: int = 0) -> dict:
        bytecode = self.compile(source)
        assert isinstance(bytecode, bytes), bytecode
        header = {"filename": "api/t.js", "env": env or {}, "mem_limit": mem_limit}
        rc, out, _ = self.call("wx_load", header, bytecode)
        assert rc == 0, out
        return out

    def run(
        self, rid: int = 1, body: bytes = b"", budget_ms: int = 5000, **fields
    ) -> tuple[dict, bytes]:
        rc, out, blob = self.call("wx_run", *batch([(rid, body)], budget_ms, **fields))
        assert rc == 0, out
        return out, blob

    def resume(
        self, results: list[dict], blob: bytes = b"", budget_ms: int = 5000
    ) -> tuple[dict, bytes]:
        rc, out, out_blob = self.call(
            "wx_resume", {"budget_ms": budget_ms, "results": results}, blob
        )
        assert rc == 0, out
        return out, out_blob


REQUEST = {"method": "GET", "url": "http://host/t", "path": "/t", "headers": {}, "query": {},
           "params": {}, "ip": "127.0.0.1"}


def batch(
    rids_bodies: list[tuple[int, bytes]], budget_ms: int = 5000, **fields
) -> tuple[dict, bytes]:
    """A wx_run header for these requests (positional, as ABI.md lists them) and their bodies."""
    f = {**REQUEST, **fields}
    items = [
        [rid, f["method"], f["url"], f["path"], f["headers"], f["query"], f["params"], f["ip"], len(body)]
        for rid, body in rids_bodies
    ]
    return {"budget_ms": budget_ms, "batch": items}, b"".join(body for _, body in rids_bodies)


def factory(body: str) -> str:
    """What the compiler makes of a script."""
    return "(function (module, exports, require) {" + body + "\n})"


def top_level(body: str) -> str:
    """What the compiler makes of a top-level-return script."""
    return factory("module.exports = async function (req, res, metadata, shared) {" + body + "\n};")


def response_body(out: dict, blob: bytes, index: int = 0) -> bytes:
    _, _, _, off, length = out["done"][index]
    return blob[off : off + length]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(build.build_guest(CACHE))


@pytest.fixture()
def guest(engine: Engine) -> Instance:
    return Instance(engine).init()


def test_build_is_cached_and_named_by_hash():
    path = build.build_guest(CACHE)
    start = time.perf_counter()
    again = build.build_guest(CACHE)
    assert time.perf_counter() - start < 0.05
    assert again == path and path.parent.name == build.guest_hash()


def test_hello_round_trip(guest: Instance):
    assert guest.load(top_level("return {message: 'hi'}")) == {"pure": True}
    out, blob = guest.run(rid=7)
    rid, status, headers, _, _ = out["done"][0]
    assert (rid, status) == (7, 200)
    assert ["content-type", "application/json; charset=utf-8"] in headers
    assert json.loads(response_body(out, blob)) == {"message": "hi"}


def test_a_stream_started_and_ended_in_one_crossing(guest: Instance):
    guest.load(factory("module.exports = async function* () { yield 'ab'; yield 'c'; };"))
    out, blob = guest.run(rid=4)
    assert out["started"] == [{"rid": 4, "status": 200, "headers": []}]
    [(rid, off, length)] = out["ended"]  # what it produced since the last chunks: all of it
    assert rid == 4 and blob[off : off + length] == b"abc"
    assert "chunks" not in out and "done" not in out


def test_timer_goes_through_the_host(guest: Instance):
    guest.load(
        top_level(
            "console.info('waiting'); await new Promise(r => setTimeout(r, 250)); return 'late'"
        )
    )
    out, _ = guest.run(rid=3)
    assert "done" not in out
    assert out["logs"] == [{"rid": 3, "level": "info", "msg": "waiting"}]
    [op] = out["ops"]
    assert op["rid"] == 3 and op["op"] == "timers.sleep" and op["args"] == {"ms": 250}
    out, blob = guest.resume([{"id": op["id"], "ok": True, "value": None}])
    assert out["done"][0][0] == 3
    assert response_body(out, blob) == b"late"


def test_cleared_timer_is_cancelled(guest: Instance):
    guest.load(
        top_level("""
        const t = setTimeout(() => {}, 1000);
        await new Promise(r => setTimeout(r, 5));
        clearTimeout(t);
        return 'ok'""")
    )
    out, _ = guest.run()
    timer, short = out["ops"]
    out, _ = guest.resume([{"id": short["id"], "ok": True, "value": None}])
    assert out["cancel"] == [timer["id"]]
    assert out["done"][0][1] == 200


def test_two_requests_in_flight_are_kept_apart(guest: Instance):
    guest.load(
        top_level("""
        console.log('start', metadata.path);
        await new Promise(r => setTimeout(r, 10));
        console.log('end', metadata.path);
        return metadata.path""")
    )
    first, _ = guest.run(rid=1, path="/a")
    second, _ = guest.run(rid=2, path="/b")
    out, blob = guest.resume(
        [
            {"id": second["ops"][0]["id"], "ok": True, "value": None},
            {"id": first["ops"][0]["id"], "ok": True, "value": None},
        ]
    )
    assert [(d[0], response_body(out, blob, i)) for i, d in enumerate(out["done"])] == [
        (2, b"/b"),
        (1, b"/a"),
    ]
    assert [(log["rid"], log["msg"]) for log in out["logs"]] == [(2, "end /b"), (1, "end /a")]


def test_script_error_is_a_failure_and_the_instance_survives(guest: Instance):
    guest.load(top_level("null.x"))
    out, _ = guest.run(rid=4)
    [failure] = out["failed"]
    assert failure["rid"] == 4
    assert failure["error"]["name"] == "TypeError"
    assert "api/t.js" in failure["error"]["stack"]
    guest.load(top_level("return 1"))
    out, blob = guest.run(rid=5)
    assert response_body(out, blob) == b"1"


def test_syntax_error_reports_line_and_column(guest: Instance):
    out = guest.compile(factory("\nlet x = ;"))
    assert isinstance(out, dict)
    assert out["error"]["name"] == "SyntaxError"
    assert (out["error"]["line"], out["error"]["col"]) == (2, 9)


def test_load_error_when_nothing_callable_is_exported(guest: Instance):
    out = guest.load(factory("module.exports = {answer: 42}"))
    assert out["error"]["name"] == "TypeError"


def test_hmac_example_matches_python(guest: Instance):
    guest.load(
        factory((REPO / "scripts" / "webhook.js").read_text()),
        env={"WEBHOOK_SECRET": "s3cret"},
    )
    payload = '{"event":"push","ünïcode":true}'
    good = "sha256=" + hmac.new(b"s3cret", payload.encode(), hashlib.sha256).hexdigest()
    request = {"method": "POST", "body": payload.encode()}
    out, blob = guest.run(
        headers={"content-type": "application/json", "x-hub-signature-256": good}, **request
    )
    assert out["done"][0][1] == 200
    assert json.loads(response_body(out, blob)) == {
        "accepted": True,
        "payload": json.loads(payload),
    }
    out, blob = guest.run(
        headers={"content-type": "application/json", "x-hub-signature-256": "sha256=00"}, **request
    )
    assert out["done"][0][1] == 401


@pytest.mark.parametrize(
    "top",
    [
        "const t = Date.now();",
        "const t = new Date();",
        "const t = performance.now();",
        "const r = Math.random();",
        "const b = crypto.getRandomValues(new Uint8Array(4));",
        "const u = crypto.randomUUID();",
        "console.log('loaded');",
        "const h = require('crypto').createHash('sha256').update('x').digest('hex');",
    ],
)
def test_a_top_level_that_reads_the_world_is_not_pure(guest: Instance, top: str):
    out = guest.load(factory(top + "\nmodule.exports = () => 1;"))
    assert "pure" not in out and "error" not in out


def test_a_pure_top_level_may_define_state_and_queue_work(guest: Instance):
    out = guest.load(factory(
        "const cache = new Map([[1, 'a']]); let n = 0; setTimeout(() => n++, 0);"
        "Promise.resolve().then(() => n++); module.exports = () => ({n, size: cache.size});"
    ))
    assert out == {"pure": True}


def test_math_random_is_reseeded_in_every_snapshot_copy(engine: Engine):
    template = Instance(engine).init()
    template.load(top_level("return [Math.random(), Math.random()]"))
    snapshot = bytes(template.mem.read(template.store, 0, template.mem.data_len(template.store)))
    values = []
    for _ in range(2):
        copy = Instance(engine, memory=snapshot)
        out, blob = copy.run()
        values.append(json.loads(response_body(out, blob)))
    assert values[0] != values[1]


def test_runaway_loop_is_a_timeout_and_the_instance_survives(guest: Instance):
    guest.load(top_level("try { for (;;) {} } catch (e) { return 'swallowed' }"))
    out, _ = guest.run(budget_ms=50)
    assert out["failed"][0]["error"]["name"] == "TimeoutError"
    guest.load(top_level("return 2"))
    out, blob = guest.run()
    assert response_body(out, blob) == b"2"


def test_deep_recursion_is_a_range_error(guest: Instance):
    guest.load(top_level("const f = (n) => f(n + 1) + 1; try { f(0) } catch (e) { return e.name }"))
    out, blob = guest.run()
    assert response_body(out, blob) == b"RangeError"


def test_memory_cap_first_throws_then_traps(guest: Instance):
    hog = "const a = []; try { for (;;) a.push(new Array(1e5).fill(1)) } catch (e) { %s }"
    guest.load(top_level(hog % "a.length = 0; return e.message"), mem_limit=32 << 20)
    out, blob = guest.run()
    assert response_body(out, blob) == b"out of memory"
    guest.load(top_level(hog % "for (;;) a.push(new Array(1e5).fill(2))"), mem_limit=32 << 20)
    with pytest.raises(wasmtime.Trap):
        guest.run()
    assert guest.io_block()[3] == 0xFFFFFFFF  # out_json marks a memory-cap trap


def test_large_request_body_grows_the_input_buffer(guest: Instance):
    guest.load(top_level("return {n: req.body.length, last: req.body[req.body.length - 1]}"))
    body = bytes(range(256)) * 1024
    out, blob = guest.run(
        method="POST", headers={"content-type": "application/octet-stream"}, body=body
    )
    assert json.loads(response_body(out, blob)) == {"n": len(body), "last": 255}


def test_malformed_call_is_an_abi_error(guest: Instance):
    rc = guest.exports["wx_run"](guest.store, 1 << 30, 0)
    assert rc < 0
    assert "abi_error" in guest.output()[0]


def test_deeply_nested_json_body_is_not_a_trap(guest: Instance):
    guest.load(
        top_level("""
        let parsed; try { JSON.parse(req.rawBody); parsed = 'yes' } catch (e) { parsed = e.name }
        return {body: typeof req.body, parsed}""")
    )
    nested = b"[" * 100_000 + b"]" * 100_000
    out, blob = guest.run(method="POST", headers={"content-type": "application/json"}, body=nested)
    assert json.loads(response_body(out, blob)) == {"body": "string", "parsed": "RangeError"}


def test_memory_cap_also_holds_when_linear_memory_runs_out_first(engine: Engine):
    small = Instance(engine).init()
    small.store.set_limits(memory_size=48 << 20)
    small.load(
        top_level(
            "const keep = []; for (;;) { try { keep.push(new Array(1e6).fill(1)) } catch {} }"
        ),
        mem_limit=64 << 20,
    )
    with pytest.raises(wasmtime.Trap):
        small.run()
    assert small.io_block()[3] == 0xFFFFFFFF


def test_handler_result_waits_for_queued_work_before_204(guest: Instance):
    guest.load(
        factory(
            "module.exports = (req, res) => { Promise.resolve().then(() => res.send('later')) }"
        )
    )
    out, blob = guest.run()
    assert response_body(out, blob) == b"later"
    guest.load(factory("module.exports = () => {}"))
    out, _ = guest.run()
    assert out["done"][0][1] == 204


def test_unhandled_rejection_is_logged(guest: Instance):
    guest.load(top_level("Promise.reject(new Error('lost')); return 'ok'"))
    out, _ = guest.run(rid=9)
    [log] = out["logs"]
    assert log["rid"] == 9 and log["level"] == "error" and "lost" in log["msg"]


def _run_with_load(guest: Instance, source: str, body: bytes = b"") -> tuple[int, dict, bytes]:
    code = guest.compile(source)
    assert isinstance(code, bytes), code
    header, bodies = batch([(1, body)], method="POST")
    header = {"budget_ms": header["budget_ms"],
              "load": {"filename": "api/t.js", "env": {"A": "1"}, "mem_limit": 0, "code": len(code)},
              "batch": header["batch"]}
    return guest.call("wx_run", header, code + bodies)


def test_run_may_load_the_script_in_the_same_crossing(guest: Instance):
    rc, out, blob = _run_with_load(
        guest,
        top_level("console.log('top'); return { env: process.env.A, body: req.rawBody };"),
        b"payload",
    )
    assert rc == 0, out
    assert json.loads(response_body(out, blob)) == {"env": "1", "body": "payload"}
    assert [log["msg"] for log in out["logs"]] == ["top"]


def test_a_load_failure_in_a_run_is_reported_as_a_load_error(guest: Instance):
    rc, out, _ = _run_with_load(guest, factory("throw new TypeError('bad top level')"))
    assert rc == 0
    assert out["error"]["name"] == "TypeError" and "done" not in out


def test_load_code_past_the_blob_is_an_abi_error(guest: Instance):
    request = {"load": {"filename": "t.js", "env": {}, "mem_limit": 0, "code": 99}, "batch": []}
    rc, out, _ = guest.call("wx_run", request, b"short")
    assert rc < 0 and "load.code" in out["abi_error"]


def test_old_builds_are_pruned_but_recent_and_current_ones_stay(tmp_path: Path):
    now = time.time()
    ages_days = {"current": 30, "a": 1, "b": 20, "c": 40, "d": 50, "e": 60}
    for name, days in ages_days.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "engine.wasm").write_bytes(b"x")
        os.utime(tmp_path / name, (now - days * 86400, now - days * 86400))
    removed = build.prune_builds(tmp_path, keep=tmp_path / "current")
    # current stays; of the rest the two newest stay (three with current), and so does anything
    # touched within the week
    assert sorted(d.name for d in removed) == ["c", "d", "e"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "current"]


def test_a_batch_runs_several_requests_in_one_crossing(guest: Instance):
    guest.load(factory("let n = 0; module.exports = (req) => ({ n: ++n, body: req.rawBody });"))
    header, blob = batch([(1, b"one"), (2, b""), (3, b"three")])
    rc, out, out_blob = guest.call("wx_run", header, blob)
    assert rc == 0, out
    done = {rid: json.loads(out_blob[off : off + n]) for rid, _, _, off, n in out["done"]}
    assert done == {1: {"n": 1, "body": "one"}, 2: {"n": 2, "body": ""}, 3: {"n": 3, "body": "three"}}
    assert "skipped" not in out


def test_a_batch_stops_at_the_request_that_runs_out_of_time(guest: Instance):
    guest.load(factory(
        "module.exports = (req) => { if (req.rawBody === 'spin') for (;;) {} return { ok: req.rawBody }; };"
    ))
    header, blob = batch([(1, b"a"), (2, b"spin"), (3, b"c"), (4, b"d")], budget_ms=100)
    rc, out, _ = guest.call("wx_run", header, blob)
    assert rc == 0, out
    assert [d[0] for d in out["done"]] == [1]
    assert [(f["rid"], f["error"]["name"]) for f in out["failed"]] == [(2, "TimeoutError")]
    assert out["skipped"] == [3, 4]
    # the instance is fine, and the skipped requests run when sent again
    header, blob = batch([(3, b"c"), (4, b"d")])
    rc, out, _ = guest.call("wx_run", header, blob)
    assert rc == 0, out
    assert sorted(d[0] for d in out["done"]) == [3, 4]


def test_batch_bodies_past_the_blob_are_an_abi_error(guest: Instance):
    header, _ = batch([(1, b"abc")])
    rc, out, _ = guest.call("wx_run", header, b"a")
    assert rc < 0 and "within the blob" in out["abi_error"]
