"""Per-request policy pieces without a server: tokens, CORS, limits, timeouts, log records."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from runtime.config import Settings
from runtime.http import auth, cors
from runtime.http.errors import HTTPError
from runtime.http.limits import FifoLimiter, LoadShedder, read_body
from runtime.observe.access_log import FLUSH_INTERVAL_S, FLUSH_LINES, AccessLog, Entry, render
from runtime.observe.redact import REDACTED, Redactor
from runtime.sandbox.types import LogRecord

TOKEN = "s3cr3t-Tok"


@pytest.mark.parametrize(("headers", "query"), [
    ({"authorization": f"Bearer {TOKEN}"}, {}),
    ({"authorization": "Basic " + base64.b64encode(f"any:{TOKEN}".encode()).decode()}, {}),
    ({"x-token": TOKEN}, {}),
    ({}, {"token": TOKEN}),
    ({"x-token": "wrong"}, {"token": TOKEN}),
])
def test_token_accepted_from_each_place(headers: dict, query: dict) -> None:
    assert auth.accepts(auth.digest(TOKEN), auth.credentials(headers, query, "").presented)


@pytest.mark.parametrize(("headers", "query"), [
    ({}, {}),
    ({"authorization": "Bearer nope"}, {}),
    ({"authorization": "Basic !!!"}, {}),
    ({"authorization": TOKEN}, {}),
    ({}, {"token": TOKEN + "x"}),
])
def test_token_refused(headers: dict, query: dict) -> None:
    assert not auth.accepts(auth.digest(TOKEN), auth.credentials(headers, query, "").presented)


def test_credentials_are_stripped_before_the_script_sees_them() -> None:
    found = auth.credentials(
        {"authorization": "Bearer x", "x-token": "x", "accept": "*/*"},
        {"token": "x", "a": "1"}, "http://h/p?a=1&token=x",
    )
    assert found.headers == {"accept": "*/*"}
    assert found.query == {"a": "1"}
    assert found.url == "http://h/p?a=1"


def test_redactor_replaces_longest_secret_first() -> None:
    redact = Redactor(["abc", "abcdef", ""])
    assert redact("x abcdef y abc") == "x [REDACTED] y [REDACTED]"


def test_cors_headers_per_policy() -> None:
    assert cors.allow_headers("none", "https://a.test") == []
    assert cors.allow_headers("*", "https://a.test") == [("access-control-allow-origin", "*")]
    assert ("access-control-allow-origin", "https://a.test") in cors.allow_headers(
        "reflective", "https://a.test")
    assert cors.allow_headers("https://b.test", "https://a.test")[0] == (
        "access-control-allow-origin", "https://b.test")


def test_preflight_for_other_origin_gets_no_grant() -> None:
    req = {"origin": "https://evil.test", "access-control-request-method": "PUT"}
    assert cors.preflight_headers("https://good.test", req) == []
    granted = dict(cors.preflight_headers("reflective", req))
    assert granted["access-control-allow-methods"] == "PUT"  # the origin comes with every answer


def test_timeout_default_unlimited_and_cap() -> None:
    s = Settings(timeout_ms=500, max_timeout_ms=1000)
    assert s.effective_timeout(None) == 500
    assert s.effective_timeout(200) == 200
    assert s.effective_timeout(5000) == 1000
    assert s.effective_timeout(0) == 1000  # unlimited, but capped
    assert Settings(max_timeout_ms=0).effective_timeout(0) is None


def test_timeout_cap_per_tenant() -> None:
    s = Settings(max_timeout_ms=1000, tenant_max_timeout_ms={"alice/1": 300})
    assert s.effective_timeout(5000, "alice/1") == 300
    assert s.effective_timeout(0, "alice/1") == 300
    assert s.effective_timeout(5000, "bob/1") == 1000


async def test_fifo_limiter_admits_in_arrival_order() -> None:
    limiter = FifoLimiter(1, max_queue=10, script="x.ts")
    order: list[int] = []

    async def run(i: int) -> None:
        async with limiter.hold():
            order.append(i)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(run(i) for i in range(6)))
    assert order == list(range(6))


async def test_fifo_limiter_caps_parallelism_and_sheds() -> None:
    limiter = FifoLimiter(2, max_queue=1, script="x.ts")
    active = peak = 0

    async def run() -> None:
        nonlocal active, peak
        async with limiter.hold():
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.02)
            active -= 1

    results = await asyncio.gather(*(run() for _ in range(5)), return_exceptions=True)
    shed = [r for r in results if isinstance(r, HTTPError)]
    assert peak == 2
    assert len(shed) == 2 and all(e.status == 503 for e in shed)


async def test_cancelled_waiter_gives_its_turn_away() -> None:
    limiter = FifoLimiter(1, max_queue=10, script="x.ts")
    async with limiter.hold():
        waiter = asyncio.create_task(limiter.hold().__aenter__())
        await asyncio.sleep(0)
        waiter.cancel()
    async with limiter.hold():
        pass  # would hang if the cancelled waiter kept the slot


def test_load_shedder() -> None:
    shedder = LoadShedder(1)
    shedder.enter()
    with pytest.raises(HTTPError) as err:
        shedder.enter()
    assert err.value.status == 503
    shedder.leave()
    shedder.enter()


async def test_body_limit_refuses_declared_length_without_reading() -> None:
    async def receive() -> dict:
        raise AssertionError("read although Content-Length was over the limit")

    with pytest.raises(HTTPError) as err:
        await read_body(receive, "11", 10)
    assert err.value.status == 413


async def test_body_limit_counts_streamed_chunks() -> None:
    chunks = [{"type": "http.request", "body": b"x" * 6, "more_body": True}] * 2

    async def receive() -> dict:
        return chunks.pop()

    with pytest.raises(HTTPError):
        await read_body(receive, None, 10)


def test_log_levels_grow() -> None:
    entry = Entry("a.ts", "POST", "/a", 200, 0, 1.0, {"q": "1"}, "1.2.3.4",
                  {"authorization": "Bearer x", "accept": "*/*"}, b"payload",
                  console=[LogRecord("debug", "d"), LogRecord("log", "l"), LogRecord("error", "e")])
    assert render(entry, "none", True) is None
    minimal = render(entry, "minimal", False)
    assert minimal is not None and "query" not in minimal and "body" not in minimal
    assert [c["msg"] for c in minimal["console"]] == ["e"]
    assert [c["msg"] for c in render(entry, "standard", False)["console"]] == ["l", "e"]
    full = render(entry, "full", False)
    assert [c["msg"] for c in full["console"]] == ["l", "e"]
    assert full["headers"]["authorization"] == REDACTED and full["body"] == "payload"
    assert [c["msg"] for c in render(entry, "debug", False)["console"]] == ["d", "l", "e"]
    assert render(entry, "minimal", True)["body"] == "payload"


@pytest.mark.parametrize("ns", [0, 1_700_000_000_000_000_000, 1_700_000_000_001_500_000,
                                1_700_000_000_999_999_999, 1_700_000_059_999_999_600,
                                1_763_000_000_123_456_789])
def test_log_time_is_iso_to_the_millisecond(ns: int) -> None:
    entry = Entry("a.ts", "GET", "/a", 200, ns, 1.0)
    millis = datetime.fromtimestamp(ns // 1_000_000_000, UTC) + timedelta(
        milliseconds=ns // 1_000_000 % 1000
    )
    assert render(entry, "minimal", False)["time"] == millis.isoformat(timespec="milliseconds")


def test_log_time_follows_the_clock_within_one_second() -> None:
    """The cached text of one millisecond is never given for the next."""
    base = 1_763_000_000_998_000_000
    times = [render(Entry("a.ts", "GET", "/a", 200, base + k * 400_000, 1.0), "minimal", False)
             ["time"] for k in range(8)]
    assert times == [
        "2025-11-13T02:13:20.998+00:00", "2025-11-13T02:13:20.998+00:00",
        "2025-11-13T02:13:20.998+00:00", "2025-11-13T02:13:20.999+00:00",
        "2025-11-13T02:13:20.999+00:00", "2025-11-13T02:13:21.000+00:00",
        "2025-11-13T02:13:21.000+00:00", "2025-11-13T02:13:21.000+00:00",
    ]


async def test_access_log_writes_batches_soon_and_the_rest_on_close(tmp_path: Path) -> None:
    log = AccessLog(tmp_path)
    log.add("t-1", Entry("one.ts", "GET", "/one", 200, 0, 1.0), "minimal", False, None)
    log.add("t-1", Entry("two.ts", "GET", "/two", 500, 0, 1.0, error="has s3cret"), "standard",
            False, Redactor(["s3cret"]))
    log.add("t-1", Entry("quiet.ts", "GET", "/quiet", 200, 0, 1.0), "none", False, None)
    path = tmp_path / "t-1.log"
    assert not path.exists()
    await asyncio.sleep(FLUSH_INTERVAL_S * 3)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["script"] for line in lines] == ["one.ts", "two.ts"]
    assert lines[1]["error"] == "has [REDACTED]" and "query" not in lines[0]
    log.add("t-1", Entry("three.ts", "GET", "/three", 200, 0, 1.0), "minimal", False, None)
    log.close()
    assert json.loads(path.read_text().splitlines()[-1])["script"] == "three.ts"


async def test_a_burst_of_lines_is_written_before_the_interval(tmp_path: Path) -> None:
    log = AccessLog(tmp_path)
    for n in range(FLUSH_LINES):
        log.add("t-1", Entry(f"{n}.ts", "GET", "/", 200, 0, 1.0), "minimal", False, None)
    assert len((tmp_path / "t-1.log").read_text().splitlines()) == FLUSH_LINES
    log.close()
