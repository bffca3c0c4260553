"""`monitor/*` over HTTP against a real `wexec serve`: the figures' shapes, and a Prometheus
scrape whose request counter moves by exactly the requests made, with one process and two."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import ALICE_TOKEN, Server
from tests.support import eventually, running_server, write_scripts

API = "/api/v1/exec/monitor"
SCRIPTS = {
    "default/1/fast.ts": "return { ok: true };\n",
    "default/1/slow.ts": "await new Promise((r) => setTimeout(r, 1500));\nreturn 'late';\n",
    "default/1/boom.ts": "throw new Error('boom');\n",
    "default/1/kept.ts": "// @mode worker\nlet n = 0;\nexport default () => ({ n: ++n });\n",
    "alice/1/hers.ts": "return 'alice';\n",
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tenants")
    write_scripts(root, SCRIPTS)
    return root


@pytest.fixture(scope="module")
def client(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    data = tmp_path_factory.mktemp("data")
    with running_server(["--tenants-root", str(root), "--data", str(data)]) as url, \
            httpx.Client(base_url=url, timeout=30) as c:
        yield c


def _performance(client: httpx.Client, script: str) -> dict:
    answer = client.post(f"{API}/script-performance", json={"script": script}).json()
    assert answer["count"] == 1
    return answer["scripts"][0]


def test_stats(client: httpx.Client) -> None:
    for _ in range(3):
        client.get("/fast")
    stats = client.get(f"{API}/stats").json()
    assert {"uptime", "requests", "websocket", "cron", "cache", "pid", "workers"} <= stats.keys()
    assert stats["uptime"] > 0 and stats["workers"] == 1
    assert stats["requests"]["total"] >= 3 and stats["requests"]["active"] == 0
    assert set(stats["cache"]) == {"workerInstances", "serverlessImages", "serverlessImageBytes",
                                   "slowScripts"}
    assert stats["cache"]["serverlessImages"] >= 1


def test_active_requests_lists_a_request_in_flight(client: httpx.Client) -> None:
    slow = threading.Thread(target=client.get, args=("/slow",), daemon=True)
    slow.start()
    found: list[dict] = []

    def listed() -> bool:
        found[:] = client.get(f"{API}/active-requests").json()["requests"]
        return bool(found)

    eventually(listed)
    (active,) = found
    assert active["script"] == "slow.ts" and active["method"] == "GET" and active["path"] == "/slow"
    assert active["elapsedMs"] >= 0 and active["start"].endswith("+00:00")
    time.sleep(0.3)
    again = client.get(f"{API}/active-requests").json()["requests"]
    assert again and again[0]["elapsedMs"] > active["elapsedMs"]
    slow.join(10)
    assert client.get(f"{API}/active-requests").json() == {
        **client.get(f"{API}/active-requests").json(), "requests": [], "count": 0}


def test_script_performance(client: httpx.Client) -> None:
    for _ in range(4):
        client.get("/kept")
        client.get("/boom")
    kept = _performance(client, "kept.ts")
    assert kept["count"] == 4 and kept["errorRate"] == 0
    assert kept["coldStarts"] == 1 and kept["warmStarts"] == 3  # the worker loads once
    assert 0 < kept["p50Ms"] <= kept["p95Ms"] <= kept["p99Ms"]
    assert 0 < kept["meanSandboxMs"] <= kept["meanMs"]
    assert kept["memoryPeakBytes"] > 0
    boom = _performance(client, "boom.ts")
    assert boom["count"] == 4 and boom["errors"] == 4 and boom["errorRate"] == 1.0


def test_scripts_clamps_limit_and_sorts(client: httpx.Client) -> None:
    for _ in range(5):
        client.get("/fast")
    client.get("/kept")
    by_requests = client.get(f"{API}/scripts", params={"sort": "requests"}).json()
    counts = [s["requests"] for s in by_requests["scripts"]]
    assert counts == sorted(counts, reverse=True) and by_requests["sort"] == "requests"
    latest = client.get(f"{API}/scripts").json()
    assert latest["scripts"][0]["script"] == "kept.ts" and latest["sort"] == "lastActivity"
    assert client.get(f"{API}/scripts", params={"limit": 0}).json()["limit"] == 1
    assert len(client.get(f"{API}/scripts", params={"limit": 0}).json()["scripts"]) == 1
    assert client.get(f"{API}/scripts", params={"limit": 9999}).json()["limit"] == 500
    bad = client.get(f"{API}/scripts", params={"sort": "nonsense"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_request"


def test_a_tenant_sees_only_its_own_scripts(client: httpx.Client) -> None:
    client.get("/hers", headers={"host": "alice-1.example.com"})
    alice = {"subdomain": "alice", "execId": "1"}
    mine = client.get(f"{API}/scripts", params=alice).json()["scripts"]
    assert [s["script"] for s in mine] == ["hers.ts"]
    assert "hers.ts" not in [s["script"] for s in client.get(f"{API}/scripts").json()["scripts"]]


def _requests_counted(base: str, script: str) -> float:
    text = httpx.get(f"{base}{API}/metrics", timeout=30).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "wexec_requests":
            total += sum(s.value for s in family.samples
                         if s.name == "wexec_requests_total" and s.labels["script"] == script)
    return total


@pytest.mark.parametrize("workers", [1, 2])
def test_the_prometheus_request_counter_moves_by_exactly_the_requests_made(
    root: Path, tmp_path: Path, workers: int
) -> None:
    with running_server(["--tenants-root", str(root), "--data", str(tmp_path),
                         "--workers", str(workers)]) as base:
        before = _requests_counted(base, "fast.ts")
        made = 40
        for _ in range(made):  # a connection each, so the kernel spreads them over processes
            assert httpx.get(f"{base}/fast", headers={"connection": "close"}).status_code == 200
        # each process gives its counts to the shared series within a second (FLUSH_S)
        eventually(lambda: _requests_counted(base, "fast.ts") - before >= made, timeout_s=5)
        time.sleep(1.5)  # everything counted has been given by now: nothing more may come
        for _ in range(4):  # whichever process answers the scrape
            assert _requests_counted(base, "fast.ts") - before == made
        if workers > 1:
            pids = {httpx.get(f"{base}{API}/stats", headers={"connection": "close"}).json()["pid"]
                    for _ in range(20)}
            assert len(pids) == 2, "the requests all reached one process: nothing was summed"


def test_tokens_keep_logs_and_monitor_to_their_tenant(api: Server) -> None:
    """A tenant's token reads its own logs and figures, not another's, and not the scrape of
    every tenant; the all-tenants token reads them all."""
    alice = {"authorization": f"Bearer {ALICE_TOKEN}"}
    with httpx.Client(base_url=api.base, timeout=30) as client:
        assert client.get("/hello", headers={"host": "alice-1.example.com"}).status_code == 200
        mine = client.get(f"{API}/scripts", headers=alice).json()
        assert [s["script"] for s in mine["scripts"]] == ["hello.ts"]
        bob = {"subdomain": "bob", "execId": "7"}
        assert client.get(f"{API}/scripts", headers=alice, params=bob).status_code == 403
        assert client.get("/api/v1/exec/logs/list", headers=alice, params=bob).status_code == 403
        assert client.get("/api/v1/exec/logs/list", headers=alice).status_code == 200
        refused = client.get(f"{API}/metrics", headers=alice)
        assert refused.status_code == 403 and "WEXEC_API_TOKEN" in refused.json()["message"]
        assert client.get(f"{API}/metrics").status_code == 401
    assert "wexec_requests_total" in api.client.get(f"{API}/metrics").text
