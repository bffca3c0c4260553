"""Guest threads are shared fairly: one tenant's CPU-bound requests never make another tenant's
requests wait for their timeouts, and no request fails for a scheduling decision.

Driven through the real server, with two tenants under `--tenants-root`.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runtime.sandbox.threads import GUEST_NICE, GuestThreads
from tests.support import running_server, write_scripts

SPIN = "// @timeout 6000\n{mode}\nconst t = Date.now();\nwhile (Date.now() - t < 10000) {{}}\nreturn 'never';"
WORK = "// @mode {mode}\nconst t = performance.now();\nwhile (performance.now() - t < {ms}) {{}}\nreturn {{ done: true }};"


@pytest.fixture(scope="module")
def two_tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("tenants")
    write_scripts(root / "alice" / "1", {
        "spin.ts": SPIN.format(mode="// @mode serverless"),
        "spin-worker.ts": SPIN.format(mode="// @mode worker"),
        "sleep.ts": "await new Promise((r) => setTimeout(r, 1000));\nreturn { slept: true };",
        "counter.ts": "// @mode worker\nlet n = 0;\nexport default (req) => { n++; const ms = +(req.query.ms || 0); const t = Date.now(); while (Date.now() - t < ms) {} return { n }; };",
    })
    write_scripts(root / "bob" / "1", {
        "hello.ts": "// @mode worker\nreturn { hello: 'bob' };",
        "hello-serverless.ts": "return { hello: 'bob' };",
        "slow.ts": WORK.format(mode="serverless", ms=20),
        "slow-worker.ts": WORK.format(mode="worker", ms=20),
        "waits.ts": "await new Promise((r) => setTimeout(r, 20));\nreturn { waited: true };",
    })
    with running_server(["--tenants-root", str(root)]) as base:
        yield base, root


def host(tenant: str) -> dict[str, str]:
    return {"host": f"{tenant}-1.example.com"}


async def test_a_spinning_tenant_does_not_hold_up_another(two_tenants: tuple[str, Path]) -> None:
    base, _ = two_tenants
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        spinners = [
            asyncio.ensure_future(client.get(path, headers=host("alice")))
            for path in ("/spin", "/spin", "/spin-worker", "/spin")
        ]
        await asyncio.sleep(0.5)  # alice now holds every guest thread she may
        assert not any(s.done() for s in spinners)
        # bob's worker hello (its first request starts the worker), a serverless first request,
        # slow scripts that run on the guest threads, and one that waits on a timer
        for path in ("/hello", "/hello", "/hello-serverless", "/slow", "/slow-worker", "/waits"):
            started = time.monotonic()
            answer = await client.get(path, headers=host("bob"))
            took = time.monotonic() - started
            assert answer.status_code == 200, (path, answer.text)
            assert took < 1.0, f"bob's {path} waited {took:.2f} s behind alice's spinning requests"
        answers = await asyncio.gather(*spinners)
        assert {a.status_code for a in answers} == {504}  # alice's own limit ends them


async def raw_get(base: str, path: str, tenant: str) -> int:
    """One GET on a connection of its own; its status (a client light enough for hundreds)."""
    host_, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host_, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {tenant}-1.example.com\r\nConnection: close\r\n\r\n".encode())
    status = int((await reader.read()).split(b" ", 2)[1])
    writer.close()
    return status


async def test_requests_waiting_on_timers_resume_beside_their_tenants_spinning_ones(
    two_tenants: tuple[str, Path],
) -> None:
    base, _ = two_tenants
    assert await raw_get(base, "/sleep", "alice") == 200  # its first request makes its image
    spinners = [asyncio.ensure_future(raw_get(base, "/spin", "alice")) for _ in range(2)]
    await asyncio.sleep(0.3)  # alice's threads for new requests are both spinning
    started = time.monotonic()
    statuses = await asyncio.gather(*(raw_get(base, "/sleep", "alice") for _ in range(300)))
    took = time.monotonic() - started
    assert statuses == [200] * 300
    assert took < 3.0, f"300 requests sleeping 1 s each took {took:.2f} s"
    assert await asyncio.gather(*spinners) == [504, 504]


async def test_a_slower_worker_request_completes_after_quick_ones(two_tenants: tuple[str, Path]) -> None:
    base, _ = two_tenants
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        first = (await client.get("/counter", headers=host("alice"))).json()["n"]
        for _ in range(20):
            await client.get("/counter", headers=host("alice"))
        for i, ms in enumerate((8, 40, 0)):
            answer = await client.get("/counter", params={"ms": ms}, headers=host("alice"))
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"n": first + 21 + i}  # ran once each, none failed


async def test_guest_threads_cap_each_tenant_and_lower_their_priority() -> None:
    threads = GuestThreads(threads=8, per_tenant=2)
    gate = threading.Event()
    running: list[str] = []

    def hold(name: str) -> int:
        running.append(name)
        gate.wait(5)
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    try:
        held = [asyncio.ensure_future(threads.run("a", lambda i=i: hold(f"a{i}"))) for i in range(4)]
        resumed = asyncio.ensure_future(threads.run("a", lambda: hold("a-resume"), resume=True))
        other = asyncio.ensure_future(threads.run("b", lambda: hold("b")))
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(running) == 4:
                break
        # two of a's new requests, a's resume beside them, and b at once; a's other two wait
        assert sorted(running) == ["a-resume", "a0", "a1", "b"]
        assert threads.busy("a") == 2
        held[3].cancel()  # one that waits goes away: it never runs, and frees nothing it lacks
        gate.set()
        niceness = await asyncio.gather(*held[:3], resumed, other)
        assert sorted(running) == ["a-resume", "a0", "a1", "a2", "b"]
        assert set(niceness) == {os.getpriority(os.PRIO_PROCESS, 0) + GUEST_NICE}
        assert threads.busy("a") == 0 and threads.busy("b") == 0
    finally:
        threads.close()
