"""A relative fetch between worker scripts, answered inside the calling script's crossing
(``Gateway.inline``, ``WorkerDriver.nested``): what the two scripts see of each other, the
answers that come later or larger (a ticket the caller's op takes), and the caller's deadline.

The app runs in-process, as a server runs it (lifespan, guest threads, real guest); a wrapper
around ``WorkerDriver.nested`` records what each call came back with, without changing it, to
tell which way each fetch went."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from runtime.app import create_app
from runtime.sandbox.worker import WorkerDriver
from tests.support import Lifespan, settings_for_tests, write_scripts

CALLS = """// @mode worker
// @timeout 400
try {
  const r = await fetch('/' + req.query.to);
  return { status: r.status, text: await r.text() };
} catch (e) {
  return { error: e.name, message: e.message };
}
"""

SCRIPTS = {
    "target.ts": "// @mode worker\nshared.seen = shared.mark;\n"
                 "return { mark: shared.mark, q: req.query.q, hops: req.headers['x-wexec-hops'] };",
    "caller.ts": "// @mode worker\nshared.mark = req.query.mark;\n"
                 "const r = await fetch('/target?q=1');\n"
                 "return { status: r.status, got: await r.json(), seen: shared.seen };",
    "calls.ts": CALLS,
    "later.ts": "// @mode worker\nawait new Promise((r) => setTimeout(r, 20)); return 'after a timer';",
    "big.ts": "// @mode worker\nreturn 'x'.repeat(100000);",
    "spin.ts": "// @mode worker\nconst t = Date.now(), ms = Number(req.query.ms ?? 3000);\n"
               "while (Date.now() - t < ms) {}\nreturn 'spun';",
    "throws.ts": "// @mode worker\nthrow new TypeError('the target failed');",
    "streams.ts": "// @mode worker\nreturn (async function* () { yield 'one '; yield 'two'; })();",
    "counter.ts": "// @mode worker\nlet n = 0;\nexport default (req) => {\n"
                  "  n = req.query.reset ? 0 : n + 1;\n  return { n };\n};",
}


@pytest.fixture
def went(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What each ``nested`` call came back with: Result, ScriptError, InFlight, or None."""
    seen: list[str] = []
    real = WorkerDriver.nested

    def nested(self: WorkerDriver, *args: Any) -> Any:
        outcome = real(self, *args)
        seen.append(type(outcome).__name__ if outcome is not None else "None")
        return outcome

    monkeypatch.setattr(WorkerDriver, "nested", nested)
    return seen


@pytest_asyncio.fixture(loop_scope="function")
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    write_scripts(tmp_path / "scripts", SCRIPTS)
    app = create_app(settings_for_tests(scripts=tmp_path / "scripts", data=tmp_path / "data"))
    lifespan = Lifespan(app)
    await lifespan.start()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
        for name in ("target", "later", "big", "spin", "throws", "streams", "counter"):
            await c.get(f"/{name}", params={"ms": "0"})
        yield c
    await lifespan.stop()


async def test_the_two_scripts_see_each_others_shared_writes_within_the_crossing(
    client: httpx.AsyncClient, went: list[str],
) -> None:
    got = (await client.get("/caller", params={"mark": "a"})).json()
    assert went == ["Result"]  # answered inside the caller's crossing
    assert got == {"status": 200, "got": {"mark": "a", "q": "1", "hops": "1"}, "seen": "a"}
    got = (await client.get("/caller", params={"mark": "b"})).json()
    assert got["got"]["mark"] == "b" and got["seen"] == "b"


async def test_an_answer_that_comes_later_is_followed_on_the_event_loop(
    client: httpx.AsyncClient, went: list[str],
) -> None:
    got = (await client.get("/calls", params={"to": "later"})).json()
    assert went == ["InFlight"]
    assert got == {"status": 200, "text": "after a timer"}


async def test_a_streamed_answer_is_followed_on_the_event_loop(
    client: httpx.AsyncClient, went: list[str],
) -> None:
    got = (await client.get("/calls", params={"to": "streams"})).json()
    assert went == ["InFlight"]
    assert got == {"status": 200, "text": "one two"}


async def test_an_answer_larger_than_a_call_carries_reaches_the_caller_whole(
    client: httpx.AsyncClient, went: list[str],
) -> None:
    got = (await client.get("/calls", params={"to": "big"})).json()
    assert went == ["Result"]
    assert got == {"status": 200, "text": "x" * 100000}


async def test_a_failing_target_answers_the_caller_as_it_would_a_client(
    client: httpx.AsyncClient, went: list[str],
) -> None:
    got = (await client.get("/calls", params={"to": "throws"})).json()
    assert went == ["ScriptError"]
    assert got["status"] == 500
    assert "the target failed" in got["text"]


async def test_the_callers_deadline_stops_the_target(
    client: httpx.AsyncClient, went: list[str],
) -> None:
    """As a fetch made through the event loop: the target gets what time its caller has left,
    and the caller, out of time itself, answers as any script past its @timeout does."""
    t0 = time.monotonic()
    resp = await client.get("/calls", params={"to": "spin"})
    assert time.monotonic() - t0 < 2.5  # not the target's 3 s
    assert went == ["ScriptTimeout"]
    assert resp.status_code == 504 and resp.json()["error"] == "timeout"
    assert (await client.get("/spin", params={"ms": "0"})).text == "spun"  # it goes on


async def test_callers_and_clients_of_one_target_all_get_their_answers(
    client: httpx.AsyncClient, went: list[str],
) -> None:
    """The target's instance is crossed into both inside callers' crossings and by its own
    clients' batches, at once: every request is answered, and every write counted once."""
    await client.get("/counter", params={"reset": "1"})
    calls = [client.get("/calls", params={"to": "counter"}) if i % 2 else client.get("/counter")
             for i in range(120)]
    answers = await asyncio.gather(*calls)
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers if a.status_code != 200]
    assert (await client.get("/counter")).json() == {"n": 121}
    assert "Result" in went  # some went inside their callers' crossings
