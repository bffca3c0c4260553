"""Shared state: plain property access on a tenant's state kept in the host, through real
scripts in a real sandbox and over real HTTP (both modes, a worker's trap, a restart, several
server processes, several tenants), and the atomic ``shared.update``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from runtime.config import Settings
from runtime.host import Refused, shared, timers
from runtime.host.registry import Registry
from runtime.sandbox import Invocation, ScriptError
from runtime.state.sqlite import SQLiteBackend
from runtime.state.store import MISSING, SharedState
from tests.host.harness import holding
from tests.support import eventually, running_server, settings_for_tests, write_scripts

ACCESS = """
shared.hits = (shared.hits ?? 0) + 1;
shared.users = shared.users ?? {};
shared.users.alice = { n: shared.hits, tags: ['a'] };
shared.gone = 1;
const had = 'gone' in shared;
delete shared.gone;
const list = shared.users.alice.tags;
list.push('b');
return {
  hits: shared.hits, alice: shared.users.alice, had, gone: 'gone' in shared,
  missing: shared.nothing, deep: shared.nothing?.deeper, keys: Object.keys(shared),
  all: JSON.parse(JSON.stringify(shared)), spread: { ...shared.users }, copy: list,
  own: [shared.hasOwnProperty('hits'), Object.prototype.hasOwnProperty.call(shared, 'nope')],
  text: String(shared),
};
"""


def harness_settings(tmp_path: Path, **overrides: object) -> Settings:
    return settings_for_tests(memory_limit=32 * 1024 * 1024, data=tmp_path, **overrides)


async def test_plain_property_access_reads_and_writes_the_hosts_state(tmp_path: Path) -> None:
    with holding(timers.UNIT, shared.UNIT, settings=harness_settings(tmp_path)) as h:
        first = json.loads((await h.run(ACCESS)).body)
        again = json.loads((await h.run(ACCESS, mode="worker")).body)
    assert first["hits"] == 1 and again["hits"] == 2
    assert again["alice"] == {"n": 2, "tags": ["a"]}  # an array read is a copy: push kept it local
    assert again["copy"] == ["a", "b"]
    assert again["had"] is True and again["gone"] is False
    assert "missing" not in again and "deep" not in again
    assert again["keys"] == ["hits", "users"]
    assert again["all"] == {"hits": 2, "users": {"alice": {"n": 2, "tags": ["a"]}}}
    assert again["spread"] == {"alice": {"n": 2, "tags": ["a"]}}
    assert again["own"] == [True, False] and again["text"] == "[object Object]"


async def test_update_and_increment_are_atomic_helpers(tmp_path: Path) -> None:
    src = (
        "const a = shared.increment('n');\n"
        "const b = shared.increment('n', 10);\n"
        "const l = shared.update('log', (v) => [...(v ?? []), b]);\n"
        "shared.update('log', () => undefined);\n"
        "let notNumber; shared.s = 'x';\n"
        "try { shared.increment('s'); } catch (e) { notNumber = e.message; }\n"
        "return { a, b, l, log: shared.log, notNumber };"
    )
    with holding(shared.UNIT, settings=harness_settings(tmp_path)) as h:
        out = json.loads((await h.run(src)).body)
    assert out == {"a": 1, "b": 11, "l": [11], "notNumber": "shared.increment: shared.s is not a number"}


async def test_a_value_that_is_not_json_or_too_large_to_read_back_is_refused(tmp_path: Path) -> None:
    src = (
        "const out = [];\n"
        "for (const v of [() => 1, 'x'.repeat(70000), { ok: { big: new Array(40000).fill(1) } }]) {\n"
        "  try { shared.v = v; out.push('kept'); } catch (e) { out.push(e.message); }\n"
        "}\n"
        "shared.big = {};\n"
        "for (let i = 0; i < 8; i++) shared.big['k' + i] = 'y'.repeat(30000);\n"
        "out.push(Object.keys(shared.big).length, shared.big.k7.length);\n"
        "return out;"
    )
    with holding(shared.UNIT, settings=harness_settings(tmp_path)) as h:
        out = json.loads((await h.run(src)).body)
    assert out[0] == "shared.v: only JSON values can be kept in shared (got function)"
    assert out[1].startswith("shared.v would be 70002 bytes of JSON in one value")
    assert out[2].startswith("shared.v.ok.big would be 80001 bytes of JSON in one value")
    assert out[3:] == [8, 30000]  # an object may be larger than one read: it is read by key


async def test_a_tenants_state_is_capped_with_an_error_naming_the_setting(tmp_path: Path) -> None:
    src = "shared.a = 'x'.repeat(600);\ntry { shared.b = 'y'.repeat(600); } catch (e) { return e.message; }"
    settings = harness_settings(tmp_path, shared_tenant_bytes=1000)
    with holding(shared.UNIT, settings=settings) as h:
        out = (await h.run(src)).body.decode()
    assert out.startswith("shared state of default/1 is full: this write would make it 1206")
    assert "past its cap of 1000 (WEXEC_SHARED_TENANT_BYTES)" in out


async def test_a_script_not_granted_shared_is_refused_naming_the_unit(tmp_path: Path) -> None:
    with holding(shared.UNIT, settings=harness_settings(tmp_path)) as h, pytest.raises(ScriptError) as caught:
        await h.run("return shared.x;", grants={"response": True})
    assert caught.value.message == (
        "host call shared.get refused: this script is not granted shared (every script may use "
        "its own tenant's shared state)"
    )


def test_a_bound_call_from_no_script_is_refused(tmp_path: Path) -> None:
    registry = Registry(harness_settings(tmp_path), (shared.UNIT,))
    with pytest.raises(Refused, match="host call shared.get refused: no script is making this"):
        registry.call("shared.get", b'["k"]\n', None)


# -- over HTTP ----------------------------------------------------------------------------------

HITS = "shared.hits = (shared.hits ?? 0) + 1;\nreturn { hits: shared.hits };\n"
SCRIPTS = {
    "hits.ts": HITS,
    "worker-hits.ts": "// @mode worker\n" + HITS,
    "read.ts": "return { state: JSON.parse(JSON.stringify(shared)) };\n",
    "inc.ts": "return { n: shared.increment('n') };\n",
    "worker-inc.ts": "// @mode worker\nreturn { n: shared.increment('n') };\n",
    "bomb.ts": (
        "// @mode worker\nconst keep = [];\n"
        "export default (req) => {\n"
        "  if (req.method === 'POST') while (true) { try { keep.push(new Array(1e6).fill(1)); } catch {} }\n"
        "  shared.bombed = (shared.bombed ?? 0) + 1;\n  return { bombed: shared.bombed };\n};\n"
    ),
}


def tenants(root: Path) -> Path:
    for tenant in ("default/1", "alice/1", "bob/1"):
        write_scripts(root / tenant, SCRIPTS)
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    root = tenants(tmp_path_factory.mktemp("tenants"))
    data = tmp_path_factory.mktemp("data")
    with running_server(["--tenants-root", str(root), "--data", str(data)]) as url:
        yield url, root, data


def get(base: str, path: str, tenant: str = "alice-1", method: str = "GET") -> httpx.Response:
    return httpx.request(method, base + path, headers={"host": f"{tenant}.example.com"}, timeout=30)


def test_every_script_of_a_tenant_sees_one_state_in_both_modes(server: tuple[str, Path, Path]) -> None:
    base = server[0]
    assert get(base, "/hits").json() == {"hits": 1}
    assert get(base, "/worker-hits").json() == {"hits": 2}
    assert get(base, "/hits").json() == {"hits": 3}
    assert get(base, "/read").json()["state"]["hits"] == 3


def test_tenants_never_see_each_others_state(server: tuple[str, Path, Path]) -> None:
    base = server[0]
    get(base, "/hits", "bob-1")
    get(base, "/hits", "bob-1")
    bob = get(base, "/read", "bob-1").json()["state"]
    assert bob["hits"] == 2
    assert get(base, "/read", "default-1").json()["state"].get("hits") is None


def test_state_survives_a_worker_trap_and_its_rebuild(server: tuple[str, Path, Path]) -> None:
    base = server[0]
    assert get(base, "/bomb").json() == {"bombed": 1}
    assert get(base, "/bomb", method="POST").status_code == 500
    assert get(base, "/bomb").json() == {"bombed": 2}


def test_state_survives_a_server_restart(tmp_path: Path) -> None:
    root, data = tenants(tmp_path / "tenants"), tmp_path / "data"
    for expected in (1, 2):
        with running_server(["--tenants-root", str(root), "--data", str(data)]) as base:
            assert get(base, "/worker-hits").json() == {"hits": expected}
    assert (data / "state" / "shared.sqlite3").exists()


def test_increments_from_concurrent_requests_in_two_processes_lose_nothing(tmp_path: Path) -> None:
    root, data = tenants(tmp_path / "tenants"), tmp_path / "data"
    with running_server(["--tenants-root", str(root), "--data", str(data), "--workers", "2"]) as base:
        paths = ["/inc", "/worker-inc"] * 60
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(lambda p: get(base, p).json()["n"], paths))
        assert sorted(answers) == list(range(1, len(paths) + 1))
        # a plain write in one process reaches the other within the sync interval
        get(base, "/hits")
        eventually(lambda: all(get(base, "/read").json()["state"].get("hits") == 1 for _ in range(6)))


async def test_a_stretch_of_synchronous_code_sees_its_own_writes_and_others_after_an_await(
        tmp_path: Path) -> None:
    reader = (
        "shared.v = 1;\nconst first = shared.v;\nshared.v = 2;\nconst own = shared.v;\n"
        "await new Promise((r) => setTimeout(r, 300));\nreturn { first, own, later: shared.v };"
    )
    with holding(timers.UNIT, shared.UNIT, settings=harness_settings(tmp_path)) as h:
        async def write_meanwhile() -> None:
            await asyncio.sleep(0.1)
            await h.run("shared.v = 5;\nreturn {};")

        read, _ = await asyncio.gather(h.run(reader, mode="worker"), write_meanwhile())
    assert json.loads(read.body) == {"first": 1, "own": 2, "later": 5}


# -- what a worker keeps, and when its writes reach the host ------------------------------------


async def test_a_workers_kept_reads_follow_every_other_writer(tmp_path: Path) -> None:
    """A worker keeps what it read across requests; every kind of write by anyone else (a
    logged one, a host call, an update, the management API's) reaches its next request."""
    settings = harness_settings(tmp_path)
    reader = "export default () => ({ v: shared.v ?? null, x: shared.o?.x ?? null });"
    counter = "export default () => { shared.c = (shared.c ?? 0) + 1; return { c: shared.c }; };"
    with holding(shared.UNIT, settings=settings) as h:
        box = h.sandbox
        worker = box.compiler.compile_source("// @mode worker\n" + reader, "reader.ts")
        counts = box.compiler.compile_source("// @mode worker\n" + counter, "counter.ts")

        async def read(artefact: object = worker) -> dict[str, object]:
            return json.loads((await box.invoke(artefact, Invocation("GET", "/r"))).body)  # type: ignore[arg-type]

        assert await read() == {"v": None, "x": None}
        await h.run("shared.v = 1;\nreturn {};")  # logged, applied as the request ends
        assert await read() == {"v": 1, "x": None}
        await h.run("shared.v = 2;\nreturn {};", mode="worker")
        assert await read() == {"v": 2, "x": None}
        await h.run("shared.o = {};\nshared.o.x = 3;\nreturn {};")  # a nested write: a host call
        assert await read() == {"v": 2, "x": 3}
        await h.run("return { n: shared.increment('v') };")
        assert await read() == {"v": 3, "x": 3}
        shared.state_of(settings).set("default/1", ["v"], 4, 1 << 20)
        assert await read() == {"v": 4, "x": 3}

        assert [(await read(counts))["c"] for _ in range(3)] == [1, 2, 3]  # its own writes
        await h.run("shared.c = 10;\nreturn {};")
        assert (await read(counts))["c"] == 11
        assert await read() == {"v": 4, "x": 3}


async def test_the_host_answers_a_kept_read_natively_until_its_key_changes(tmp_path: Path) -> None:
    """Once any state change drops a worker's cache, it asks the host again: what the host read
    for a key it keeps (``instance.c`` answers it, Python never sees the call) until that key
    changes, by any writer, in this process or another."""
    settings = harness_settings(tmp_path)
    reader = "export default () => ({ k: shared.k ?? null, x: shared.o?.x ?? null });"
    tenant, cap = "default/1", 1 << 20
    with holding(shared.UNIT, settings=settings) as h:
        box = h.sandbox
        unit, get = box.registry.bound["shared.get"]
        asked: list[bytes] = []

        def counted(data: bytes, caller: object) -> bytes:
            asked.append(data.partition(b"\n")[2])
            return get(data, caller)  # type: ignore[arg-type]

        box.registry.bound["shared.get"] = (unit, counted)
        worker = box.compiler.compile_source("// @mode worker\n" + reader, "reader.ts")

        async def read() -> dict[str, object]:
            asked.clear()
            return json.loads((await box.invoke(worker, Invocation("GET", "/r"))).body)

        await h.run("shared.k = 1;\nshared.o = { x: 1 };\nreturn {};")
        assert await read() == {"k": 1, "x": 1} and len(asked) == 3  # k, o, o.x: the first asks
        await h.run("shared.other = 1;\nreturn {};")  # the cache is dropped, no read key changed
        assert await read() == {"k": 1, "x": 1} and asked == []
        await h.run("shared.o.x = 2;\nreturn {};")  # a nested write: a host call
        assert await read() == {"k": 1, "x": 2} and asked == [b'["o"]', b'["o","x"]']
        await h.run("shared.k = 3;\nreturn {};")  # logged, applied as the request ends
        assert await read() == {"k": 3, "x": 2} and asked == [b'["k"]']
        await h.run("return { n: shared.increment('k') };")
        assert await read() == {"k": 4, "x": 2}

        state = shared.state_of(settings)
        other = SharedState(SQLiteBackend(settings.data_dir / "state" / "shared.sqlite3"), 10_000)
        try:  # another server process
            other.set(tenant, ["k"], 5, cap)
            other.sync()
        finally:
            other.close()
        state.sync()
        assert await read() == {"k": 5, "x": 2}
        state.set(tenant, ["o"], {"x": 6}, cap)  # the management API's set
        assert await read() == {"k": 5, "x": 6}
        state.delete(tenant, [])  # its clear
        assert await read() == {"k": None, "x": None}


async def test_a_write_reaches_other_scripts_once_its_writer_waits(tmp_path: Path) -> None:
    writer = (
        "shared.w = 1;\nshared.w2 = 'a';\nawait new Promise((r) => setTimeout(r, 300));\n"
        "shared.w = 2;\nreturn {};"
    )
    with holding(timers.UNIT, shared.UNIT, settings=harness_settings(tmp_path)) as h:
        async def read_meanwhile() -> dict[str, object]:
            await asyncio.sleep(0.15)
            return json.loads((await h.run("return { w: shared.w, w2: shared.w2 };")).body)

        _, meanwhile = await asyncio.gather(h.run(writer, mode="worker"), read_meanwhile())
        after = json.loads((await h.run("return { w: shared.w };")).body)
    assert meanwhile == {"w": 1, "w2": "a"} and after == {"w": 2}


async def test_a_write_made_before_a_trap_is_kept(tmp_path: Path) -> None:
    bomb = (
        "shared.before = 'kept';\nconst keep = [];\n"
        "while (true) { try { keep.push(new Array(1e6).fill(1)); } catch {} }"
    )
    with holding(shared.UNIT, settings=harness_settings(tmp_path)) as h:
        with pytest.raises(ScriptError):
            await h.run(bomb, mode="worker")
        out = json.loads((await h.run("return { v: shared.before };")).body)
    assert out == {"v": "kept"}


async def test_update_sees_the_writes_logged_before_it_in_the_same_stretch(tmp_path: Path) -> None:
    src = (
        "shared.n = 5;\nconst a = shared.update('n', (v) => v + 1);\nshared.m = 1;\nshared.m = 2;\n"
        "return { a, n: shared.n, m: shared.m };"
    )
    with holding(shared.UNIT, settings=harness_settings(tmp_path)) as h:
        first = json.loads((await h.run(src, mode="worker")).body)
        later = json.loads((await h.run("return { n: shared.n, m: shared.m };")).body)
    assert first == {"a": 6, "n": 6, "m": 2} and later == {"n": 6, "m": 2}


async def test_a_logged_write_reads_back_as_the_host_then_holds_it(tmp_path: Path) -> None:
    """What a worker keeps of its own write is what another script then reads from the host."""
    src = (
        "shared.a = NaN; shared.b = -0; shared.c = new Date(0); shared.d = { x: [1] };\n"
        "shared.e = [1, { y: 2 }]; shared.f = 'é\\t\"'; shared.g = true; shared.h = null;\n"
        "shared.gone = 1; delete shared.gone; shared.undef = 1; shared.undef = undefined;\n"
        "const e = shared.e; e.push(3);\n"
        "return { a: shared.a, b: Object.is(shared.b, -0), c: shared.c, d: shared.d.x, e: shared.e,\n"
        "  f: shared.f, g: shared.g, h: shared.h, has: ['h' in shared, 'gone' in shared, 'undef' in shared] };"
    )
    with holding(shared.UNIT, settings=harness_settings(tmp_path)) as h:
        kept = json.loads((await h.run(src, mode="worker")).body)
        held = json.loads((await h.run("return JSON.parse(JSON.stringify(shared));")).body)
    assert kept == {"a": None, "b": False, "c": "1970-01-01T00:00:00.000Z", "d": [1],
                    "e": [1, {"y": 2}], "f": 'é\t"', "g": True, "h": None,
                    "has": [True, False, False]}
    assert held == {"a": None, "b": 0, "c": "1970-01-01T00:00:00.000Z", "d": {"x": [1]},
                    "e": [1, {"y": 2}], "f": 'é\t"', "g": True, "h": None}


async def test_a_lone_surrogate_is_refused_at_the_write(tmp_path: Path) -> None:
    src = "try { shared.s = 'a\\ud800'; } catch (e) { return e.message; }\nreturn 'kept';"
    with holding(shared.UNIT, settings=harness_settings(tmp_path)) as h:
        out = (await h.run(src, mode="worker")).body.decode()
    assert out == "shared.s: only JSON values can be kept in shared"


def test_a_log_holding_what_the_prelude_never_writes_is_read_safely() -> None:
    log = (b'["a"]\t1\n["b"]\t{"x":2}\n["a"]\t3\n["c"]\t\n["d","e"]\t1\nnot json\t1\n'
           b'["f"]\tnot json\n["\\u0067"]\t"g"\n["h"]\t1')  # the last record was cut short
    assert shared._logged(log) == {
        "a": (b"3", 3), "b": (b'{"x":2}', {"x": 2}), "c": None, "g": (b'"g"', "g"),
    }


def test_two_processes_states_follow_each_other_through_the_file(tmp_path: Path) -> None:
    """Two ``SharedState`` over one SQLite file stand for two server processes."""
    path, cap = tmp_path / "shared.sqlite3", 1 << 20
    one, two = SharedState(SQLiteBackend(path), 10_000), SharedState(SQLiteBackend(path), 10_000)
    try:
        one.set("t/1", ["a"], {"b": 1}, cap)
        one.set("t/1", ["a", "c"], [1, 2], cap)
        assert two.get("t/1", ["a"]) is MISSING  # loaded before one synced
        one.sync()
        two.sync()
        assert two.get("t/1", ["a"]) == {"b": 1, "c": [1, 2]}
        two.delete("t/1", ["a"])
        two.sync()
        one.sync()
        assert one.get("t/1", []) == {}
        version, raw = one.take("t/1", "n")
        assert (version, raw) == (0, None)  # never written
        assert two.swap("t/1", "n", version, b"1", cap) is True
        assert one.swap("t/1", "n", version, b"5", cap) is False  # two wrote it since the take
        one.sync()
        assert one.get("t/1", ["n"]) == 1
    finally:
        one.close()
        two.close()
    again = SharedState(SQLiteBackend(path), 10_000)  # a restart reads what was written
    try:
        assert again.get("t/1", []) == {"n": 1}
    finally:
        again.close()


@pytest.mark.parametrize("write", ["shared.hits = (shared.hits ?? 0) + 1", "shared.increment('hits')"])
async def test_a_request_rerun_after_outrunning_the_inline_slice_writes_once(
    tmp_path: Path, write: str
) -> None:
    """A serverless request's first slice runs on the event loop and, past it, is run again
    on a thread from a fresh instance: whatever the first run wrote must not count twice."""
    src = f"{write};\nconst t = Date.now(); while (Date.now() - t < 30) {{}}\nreturn {{ hits: shared.hits }};"
    with holding(shared.UNIT, settings=harness_settings(tmp_path, inline_budget_ms=5.0)) as h:
        artefact = h.sandbox.compiler.compile_source(src, "spin.ts")
        seen = [json.loads((await h.sandbox.invoke(artefact, Invocation("GET", "/"))).body)["hits"]
                for _ in range(4)]
        slow = h.sandbox._slow  # type: ignore[attr-defined]
        assert artefact.key in slow._until  # it did outrun the slice, and was run again
    assert seen == [1, 2, 3, 4]
