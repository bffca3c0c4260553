"""cache/clear: a tenant's worker instances start again from their script's top level."""

from __future__ import annotations

import httpx

from tests.api.conftest import ALICE_TOKEN, PREFIX, Server

COUNTER = "// @mode worker\nlet n = 0;\nmodule.exports = () => ({ n: ++n });\n"


def count(api: Server, host: str) -> int:
    n: int = httpx.get(f"{api.base}/counter", headers={"host": host}).json()["n"]
    return n


def test_clear_vm_restarts_the_tenants_workers_only(api: Server) -> None:
    for sub, exec_id in (("alice", "1"), ("bob", "7")):
        r = api.client.post(f"{PREFIX}/scripts/write", json={
            "path": "counter.ts", "content": COUNTER, "execId": exec_id, "subdomain": sub})
        assert r.status_code == 200
    alice, bob = "alice-1.example.com", "bob-7.example.com"
    assert [count(api, alice), count(api, alice), count(api, bob)] == [1, 2, 1]
    r = api.client.post(f"{PREFIX}/cache/clear", json={"hostname": alice})
    assert r.status_code == 200, r.text
    assert r.json()["tenants"] == ["alice/1"] and r.json()["vm"] and r.json()["scripts"] >= 1
    assert count(api, alice) == 1 and count(api, bob) == 2
    r = api.client.post(f"{PREFIX}/cache/clear", json={"execId": "7", "subdomain": "bob"})
    assert r.json()["tenants"] == ["bob/7"] and count(api, bob) == 1
    r = api.client.post(f"{PREFIX}/cache/clear", json={"clearAll": True, "clearVm": True})
    assert set(r.json()["tenants"]) >= {"alice/1", "bob/7", "default/1"}
    assert count(api, alice) == 1 and count(api, bob) == 1
    kept = api.client.post(f"{PREFIX}/cache/clear", json={"hostname": alice, "clearVm": False})
    assert kept.json()["scripts"] == 0 and count(api, alice) == 2


def test_script_path_is_deprecated(api: Server) -> None:
    r = api.client.post(f"{PREFIX}/cache/clear", json={"scriptPath": "counter.ts"})
    assert r.status_code == 400 and r.json()["error"] == "deprecated"
    assert "use hostname or clearAll=true" in r.json()["message"]


def test_clear_state_is_reported_as_not_kept_yet(api: Server) -> None:
    r = api.client.post(f"{PREFIX}/cache/clear", json={"hostname": "alice-1.x",
                                                        "clearState": True})
    assert r.status_code == 200 and r.json()["state"] is False and r.json()["notes"]


def test_a_tenant_token_clears_its_tenant_only(api: Server) -> None:
    with httpx.Client(base_url=api.base,
                      headers={"authorization": f"Bearer {ALICE_TOKEN}"}) as alice:
        assert alice.post(f"{PREFIX}/cache/clear").json()["tenants"] == ["alice/1"]
        assert alice.post(f"{PREFIX}/cache/clear",
                          json={"hostname": "bob-7.example.com"}).status_code == 403
        assert alice.post(f"{PREFIX}/cache/clear", json={"clearAll": True}).status_code == 403
    assert api.client.post(f"{PREFIX}/cache/clear",
                           json={"clearVm": "sometimes"}).status_code == 422
