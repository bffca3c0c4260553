"""list, system/restart and system/restart-status, against real supervised servers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.api.conftest import ALICE_TOKEN, PREFIX, Server
from tests.support import eventually, running_server, write_scripts


def test_list_names_every_tenant(api: Server) -> None:
    body = api.client.get(f"{PREFIX}/list").json()
    assert body["execIds"] == ["1", "7"] and body["count"] == 3
    assert [i["name"] for i in body["instances"]] == ["alice/1", "bob/7", "default/1"]
    assert all(i["scripts"] == 1 for i in body["instances"])
    with httpx.Client(base_url=api.base,
                      headers={"authorization": f"Bearer {ALICE_TOKEN}"}) as alice:
        assert [i["name"] for i in alice.get(f"{PREFIX}/list").json()["instances"]] == ["alice/1"]
        assert alice.post(f"{PREFIX}/system/restart").status_code == 403
        assert alice.get(f"{PREFIX}/system/restart-status").status_code == 403


def test_restart_drains_requests_in_flight_then_starts_a_new_server(api: Server) -> None:
    write_scripts(api.tenant("default/1"), {
        "slow.ts": "await new Promise(r => setTimeout(r, 700));\nreturn 'finished';\n"})
    eventually(lambda: httpx.get(f"{api.base}/slow", timeout=10).status_code == 200, 10)
    before = api.client.get(f"{PREFIX}/system/restart-status").json()
    assert before["state"] == "idle"
    with ThreadPoolExecutor(3) as pool:
        slow = [pool.submit(httpx.get, f"{api.base}/slow", timeout=10) for _ in range(3)]
        eventually(lambda: httpx.get(f"{api.base}{PREFIX}/health").json()["inflight"] == 3)
        r = api.client.post(f"{PREFIX}/system/restart",
                            json={"drainTimeoutMs": 5000, "reason": "test restart"})
        assert r.status_code == 202, r.text
        accepted = r.json()
        assert accepted["state"] == "draining" and accepted["reason"] == "test restart"
        assert accepted["inflight"] >= 1, accepted
        again = api.client.post(f"{PREFIX}/system/restart")
        assert again.status_code == 409 and again.json()["error"] == "restart_in_progress"
        assert [f.result().text for f in slow] == ["finished"] * 3

    def restarted() -> bool:
        try:
            status = api.client.get(f"{PREFIX}/system/restart-status", timeout=2).json()
        except httpx.TransportError:
            return False
        return status["state"] == "completed"

    eventually(restarted, 60)
    status = api.client.get(f"{PREFIX}/system/restart-status").json()
    assert status["pid"] != before["pid"] and status["drained"] is True
    assert status["reason"] == "test restart" and status["requestedAt"] < status["startedAt"]
    assert httpx.get(f"{api.base}/hello").text == "hello from default/1"


def test_restart_needs_the_supervisor(tmp_path: Path) -> None:
    write_scripts(tmp_path / "s", {"hello.ts": "return 1;\n"})
    with running_server(["--scripts", str(tmp_path / "s")],
                        env={"WEXEC_RESTART_ON_CRASH": "false"}) as base:
        r = httpx.post(f"{base}{PREFIX}/system/restart", json={"graceful": True})
        assert r.status_code == 409 and r.json()["error"] == "not_supervised"
        bad = httpx.post(f"{base}{PREFIX}/system/restart", json={"drainTimeoutMs": -1})
        assert bad.status_code == 422
