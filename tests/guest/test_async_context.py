"""Hardening of the guest (issue 10): per-request globals follow the request whose code runs,
and a finished answer leaves promptly whatever the script keeps queueing.

Worker requests here interleave on one instance: a request that awaits a promise another
request settles goes on in that other request's crossing, where everything global per request
(``metadata``, ``console`` attribution, the operations it starts) must still be its own.
"""

from __future__ import annotations

import asyncio
import json
import time
from itertools import count

import pytest

from runtime.sandbox import Invocation, Result, Sandbox

_names = count()

# Gates a request waits on and another opens: the promise is made, and so settled, elsewhere.
GATES = """// @mode worker
const gates = {};
const opened = {};
const gate = (k) => opened[k] ? Promise.resolve() : new Promise((r) => { gates[k] = r; });
const open = (k) => { opened[k] = true; if (gates[k]) gates[k](); };
const who = () => metadata.query.who;
"""


def worker(sandbox: Sandbox, source: str) -> object:
    return sandbox.compiler.compile_source(GATES + source, f"guest-hardening{next(_names)}.ts")


def ask(sandbox: Sandbox, artefact: object, who: str, timeout_ms: int = 5_000) -> asyncio.Task[Result]:
    """A request as ``who`` (metadata.query.who and path /who), started now."""
    inv = Invocation("GET", f"/{who}", f"http://x/{who}?who={who}", query={"who": who})
    return asyncio.ensure_future(sandbox.invoke(artefact, inv, timeout_ms=timeout_ms))  # type: ignore[arg-type]


async def in_order(sandbox: Sandbox, artefact: object, *who: str) -> list[Result]:
    """Start the requests one after another, each once the one before has crossed and waits."""
    tasks = []
    for name in who:
        tasks.append(ask(sandbox, artefact, name))
        await asyncio.sleep(0.05)
    return list(await asyncio.gather(*tasks))


def answer(result: Result) -> object:
    return json.loads(result.body)


def lines(result: Result) -> list[str]:
    return [log.message for log in result.logs]


async def test_metadata_after_awaiting_another_requests_promise_is_still_ones_own(sandbox: Sandbox) -> None:
    artefact = worker(sandbox, """
export default async () => {
  if (who() === 'a') await gate('a');
  else open('a');
  return { who: who(), path: metadata.path, q: metadata.query };
};
""")
    a, b = await in_order(sandbox, artefact, "a", "b")
    assert answer(a) == {"who": "a", "path": "/a", "q": {"who": "a"}}
    assert answer(b) == {"who": "b", "path": "/b", "q": {"who": "b"}}


async def test_console_after_an_await_is_logged_to_its_own_request(sandbox: Sandbox) -> None:
    artefact = worker(sandbox, """
export default async () => {
  console.log('start', who());
  if (who() === 'a') {
    await gate('a');
    console.warn('after await', who());
    await gate('a').then(() => console.error('in then', who()));
  } else {
    open('a');
    console.log('opened by', who());
  }
  return { who: who() };
};
""")
    a, b = await in_order(sandbox, artefact, "a", "b")
    assert lines(a) == ["start a", "after await a", "in then a"]
    assert lines(b) == ["start b", "opened by b"]
    assert [log.level for log in a.logs] == ["log", "warn", "error"]


async def test_timers_started_after_another_requests_promise_belong_to_their_own_request(
    sandbox: Sandbox,
) -> None:
    # The timer is the request's own operation: were it listed as b's, b's end would cancel it
    # and a would wait until its timeout; and its callback runs as a.
    artefact = worker(sandbox, """
export default async () => {
  if (who() === 'a') {
    await gate('a');
    const seen = await new Promise((r) => setTimeout(() => { console.log('timer', who()); r(who()); }, 30));
    return { who: who(), seen };
  }
  open('a');
  setTimeout(() => console.log('own timer', who()), 1);
  await new Promise((r) => setTimeout(r, 5));
  return { who: who() };
};
""")
    started = time.monotonic()
    a, b = await in_order(sandbox, artefact, "a", "b")
    assert answer(a) == {"who": "a", "seen": "a"} and lines(a) == ["timer a"]
    assert answer(b) == {"who": "b"} and lines(b) == ["own timer b"]
    assert time.monotonic() - started < 2


async def test_a_chain_of_three_interleaved_requests_keeps_each_its_own(sandbox: Sandbox) -> None:
    # three opens one's gate; one goes on and opens two's; two goes on and opens one's second:
    # all of it runs in three's crossing, each continuation as its own request
    artefact = worker(sandbox, """
export default async () => {
  const seen = [];
  const note = (at) => { seen.push(at + ':' + who()); console.log(at, metadata.path); };
  if (who() === 'one') { await gate('one'); note('1a'); open('two'); await gate('one-again'); note('1b'); }
  if (who() === 'two') { await gate('two'); note('2a'); open('one-again'); await null; note('2b'); }
  if (who() === 'three') { open('one'); note('3'); }
  return { who: who(), seen };
};
""")
    one, two, three = await in_order(sandbox, artefact, "one", "two", "three")
    assert answer(one) == {"who": "one", "seen": ["1a:one", "1b:one"]}
    assert answer(two) == {"who": "two", "seen": ["2a:two", "2b:two"]}
    assert answer(three) == {"who": "three", "seen": ["3:three"]}
    assert (lines(one), lines(two), lines(three)) == (["1a /one", "1b /one"], ["2a /two", "2b /two"], ["3 /three"])


async def test_nested_async_functions_resume_as_their_request(sandbox: Sandbox) -> None:
    artefact = worker(sandbox, """
async function inner() { await gate('a'); return 'inner:' + who(); }
async function middle() { const v = await inner(); return [v, 'middle:' + who()]; }
const outer = async () => { const v = await middle(); return [...v, 'outer:' + who()]; };
export default async () => {
  if (who() === 'a') return { who: who(), trail: await outer() };
  open('a');
  return { who: who() };
};
""")
    a, b = await in_order(sandbox, artefact, "a", "b")
    assert answer(a) == {"who": "a", "trail": ["inner:a", "middle:a", "outer:a"]}
    assert answer(b) == {"who": "b"}


async def test_promise_all_settled_by_other_requests_resumes_as_the_request_that_awaits(
    sandbox: Sandbox,
) -> None:
    # a waits on two gates that b and c open; b waits on one that c opens; the last settling
    # of each Promise.all runs in c's code
    artefact = worker(sandbox, """
export default async () => {
  if (who() === 'a') {
    const got = await Promise.all([gate('from-b').then(() => who()), gate('from-c')]);
    console.log('all', who());
    return { who: who(), got };
  }
  if (who() === 'b') {
    open('from-b');
    await Promise.all([gate('b-from-c'), Promise.resolve(1)]);
    return { who: who() };
  }
  open('b-from-c');
  open('from-c');
  return { who: who() };
};
""")
    a, b, c = await in_order(sandbox, artefact, "a", "b", "c")
    assert answer(a) == {"who": "a", "got": ["a", None]} and lines(a) == ["all a"]
    assert answer(b) == {"who": "b"} and answer(c) == {"who": "c"}


async def test_a_finalizer_runs_as_no_request_whichever_request_collected(sandbox: Sandbox) -> None:
    # a's garbage (a cycle: only the collector frees it) is collected while b allocates
    artefact = worker(sandbox, """
let seen = 'not yet';
const registry = new FinalizationRegistry(() => { seen = metadata === undefined ? 'none' : who(); });
export default async () => {
  if (who() === 'a') { const o = {}; o.self = o; registry.register(o, 1); }
  if (who() === 'b') { let junk = []; for (let i = 0; i < 50000; i++) junk.push({ i }); junk = null; }
  return { who: who(), seen };
};
""")
    a, b, c = await in_order(sandbox, artefact, "a", "b", "c")
    assert [answer(r)["who"] for r in (a, b)] == ["a", "b"]
    assert answer(c) == {"who": "c", "seen": "none"}


# ---- a finished answer leaves promptly -------------------------------------------------------

STORMS = {
    "microtasks": "res.json({ ok: 1 });\n(function spin() { spins++; Promise.resolve().then(spin); })();",
    "async loop": "res.json({ ok: 1 });\nfor (;;) { spins++; await null; }",
    "returned": "(function spin() { spins++; queueMicrotask(spin); })();\nreturn { ok: 1 };",
}


@pytest.mark.parametrize("storm", list(STORMS))
async def test_a_serverless_answer_leaves_before_its_storm_ends(sandbox: Sandbox, storm: str) -> None:
    artefact = sandbox.compiler.compile_source(
        f"// @mode serverless\n// @timeout 3000\nlet spins = 0;\n{STORMS[storm]}", f"storm{next(_names)}.ts"
    )
    for _ in range(3):  # the first makes the image; the others start on the event loop
        started = time.monotonic()
        result = await sandbox.invoke(artefact, Invocation("GET", "/"))
        assert json.loads(result.body) == {"ok": 1}
        assert time.monotonic() - started < 0.5, storm
    started = time.monotonic()
    assert json.loads(sandbox.run_sync(artefact, Invocation("GET", "/")).body) == {"ok": 1}
    assert time.monotonic() - started < 0.5, storm


@pytest.mark.parametrize("storm", list(STORMS))
async def test_a_worker_answers_before_its_storm_ends_and_serves_others_meanwhile(
    sandbox: Sandbox, storm: str
) -> None:
    # The storm goes on after the answer, in slices between which other requests are served,
    # until the timeout of the request it belongs to stops it.
    src = (
        "// @mode worker\nlet spins = 0;\n"
        "export default async (req, res) => {\n"
        "  if (req.query.count) return { spins };\n"
        f"  {STORMS[storm]}\n}};\n"
    )
    artefact = sandbox.compiler.compile_source(src, f"worker-storm{next(_names)}.ts")
    count_inv = Invocation("GET", "/", query={"count": "1"})
    await sandbox.invoke(artefact, count_inv, timeout_ms=5_000)  # the worker starts
    started = time.monotonic()
    result = await sandbox.invoke(artefact, Invocation("GET", "/"), timeout_ms=1_000)
    assert json.loads(result.body) == {"ok": 1}
    assert time.monotonic() - started < 0.5
    asked = time.monotonic()
    during = answer(await sandbox.invoke(artefact, count_inv, timeout_ms=5_000))["spins"]
    assert time.monotonic() - asked < 0.5  # served between the storm's slices
    await asyncio.sleep(max(0.0, started + 1.3 - time.monotonic()))
    after = answer(await sandbox.invoke(artefact, count_inv, timeout_ms=5_000))["spins"]
    await asyncio.sleep(0.2)
    later = answer(await sandbox.invoke(artefact, count_inv, timeout_ms=5_000))["spins"]
    assert 1 < during < after == later  # it went on after the answer, and stopped at its timeout


async def test_a_stream_whose_first_crossing_ran_out_of_its_slice_goes_on(sandbox: Sandbox) -> None:
    # the head leaves at once; the generator's many awaits outlast the first crossing's slice
    src = (
        "// @timeout 5000\nexport default () => (async function* () {\n  yield 'a';\n"
        "  let x = 0;\n  for (let i = 0; i < 200000; i++) { await null; x++; }\n  yield 'b' + x;\n})();"
    )
    artefact = sandbox.compiler.compile_source(src, f"guest-hardening{next(_names)}.ts")
    started = time.monotonic()
    result = await sandbox.invoke(artefact, Invocation("GET", "/"))
    assert result.stream is not None
    assert b"".join([chunk async for chunk in result.stream]) == b"ab200000"
    assert time.monotonic() - started < 4.0  # went on in later crossings, not at its timeout
