"""`wexec serve` with no arguments serves the repository's examples, under each server and loop."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest

from runtime.cli import main
from tests.support import running_server

SERVERS = {
    "uvicorn": ["--server", "uvicorn"],
    "hypercorn": ["--server", "hypercorn"],
    "hypercorn-asyncio": ["--server", "hypercorn", "--loop", "asyncio"],
    "granian": ["--server", "granian"],
}


@pytest.fixture(scope="module", params=list(SERVERS))
def client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[httpx.Client]:
    data: Path = tmp_path_factory.mktemp("data")
    with running_server([*SERVERS[request.param], "--data", str(data)]) as base, \
            httpx.Client(base_url=base, timeout=10) as c:
        yield c


def _record_server_start(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace the three servers with stubs that note the loop they were given, and return."""
    seen: list[str] = []

    class Granian:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            seen.append(kwargs["loop"].value)

        def serve(self) -> None:
            pass

    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: seen.append(kwargs["loop"]))
    monkeypatch.setattr("hypercorn.run.run", lambda config: seen.append(config.worker_class))
    monkeypatch.setattr("granian.Granian", Granian)
    return seen


@pytest.mark.parametrize("server", ["uvicorn", "hypercorn", "granian"])
@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_loop_flag_reaches_the_server(server: str, loop: str, monkeypatch: pytest.MonkeyPatch
                                      ) -> None:
    """A server left on the other loop answers every request just the same, so look at what
    `wexec serve --loop` hands the server itself."""
    seen = _record_server_start(monkeypatch)
    # serve() exports the settings for its worker processes; unsupervised, the server stub runs
    # in this process, where `seen` can see it
    with mock.patch.dict(os.environ, {"WEXEC_RESTART_ON_CRASH": "false"}):
        main(["serve", "--server", server, "--loop", loop, "--scheduler", "normal"])
    assert seen == [loop]


@pytest.mark.parametrize("scheduler", ["batch", "normal"])
def test_scheduler_setting_reaches_the_process(scheduler: str, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    """The policy is set before the server starts, so its threads and processes inherit it."""
    _record_server_start(monkeypatch)
    before = os.sched_getscheduler(0)
    try:
        with mock.patch.dict(os.environ, {"WEXEC_SCHEDULER": scheduler,
                                             "WEXEC_RESTART_ON_CRASH": "false"}):
            main(["serve"])
        expected = os.SCHED_BATCH if scheduler == "batch" else before
        assert os.sched_getscheduler(0) == expected
    finally:
        os.sched_setscheduler(0, before, os.sched_param(0))


def test_hello(client: httpx.Client) -> None:
    r = client.get("/hello")
    assert r.status_code == 200 and r.json()["message"] == "Hello from wexec!"


def test_echo(client: httpx.Client) -> None:
    assert client.post("/echo", json={"hello": "world"}).json() == {
        "ok": True, "body": {"hello": "world"}}


def test_webhook_hmac(client: httpx.Client) -> None:
    body = '{"event":"push","ref":"main"}'
    sig = "sha256=" + hmac.new(b"shhh-test", body.encode(), hashlib.sha256).hexdigest()
    r = client.post("/webhook", content=body, headers={
        "content-type": "application/json", "x-hub-signature-256": sig})
    assert r.json() == {"accepted": True, "payload": json.loads(body)}
    assert client.post("/webhook", json={}).status_code == 401


def test_dynamic_route(client: httpx.Client) -> None:
    r = client.get("/api/users/42")
    assert r.json()["user"] == {"id": "42", "name": "user-42"}


def test_worker_counter(client: httpx.Client) -> None:
    first = client.get("/counter").json()["count"]
    assert client.get("/counter").json()["count"] == first + 1


def test_errors_are_json(client: httpx.Client) -> None:
    r = client.get("/no/such/script")
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    assert r.json()["path"] == "/no/such/script"


def test_streamed_countdown(client: httpx.Client) -> None:
    with client.stream("GET", "/countdown", params={"from": "2"}) as r:
        got = [(time.monotonic(), chunk) for chunk in r.iter_raw()]
    assert r.status_code == 200 and "content-length" not in r.headers
    assert b"".join(chunk for _, chunk in got) == b"2\n1\nliftoff\n"
    assert len(got) == 3 and got[-1][0] - got[0][0] >= 0.18
