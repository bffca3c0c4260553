"""`POST /api/v1/exec/shared-state/get|set|clear` on a real server, beside the tenants' scripts:
what the API writes the scripts read, and what they write the API reads."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import running_server, write_scripts

STATE = "/api/v1/exec/shared-state/"
SCRIPTS = {
    "read.ts": "return { state: JSON.parse(JSON.stringify(shared)) };\n",
    "write.ts": "shared.visits = (shared.visits ?? 0) + 1;\nshared.users = { alice: { n: 1 } };\nreturn {};\n",
}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("tenants")
    for tenant in ("alice/1", "bob/1"):
        write_scripts(root / tenant, SCRIPTS)
    env = {"WEXEC_SHARED_TENANT_BYTES": "4096"}
    with running_server(["--tenants-root", str(root), "--data", str(tmp_path_factory.mktemp("data"))], env) as url:
        yield url


def api(base: str, verb: str, **body: Any) -> httpx.Response:
    return httpx.post(base + STATE + verb, json=body, timeout=30)


def script(base: str, path: str, tenant: str) -> Any:
    return httpx.get(base + path, headers={"host": f"{tenant}.example.com"}, timeout=30).json()


def test_what_scripts_write_the_api_reads_by_path(base: str) -> None:
    script(base, "/write", "alice-1")
    host = "alice-1.example.com"
    assert api(base, "get", hostname=host, path="users.alice.n").json() == {
        "hostname": host, "path": "users.alice.n", "value": 1,
    }
    assert api(base, "get", hostname=host).json()["value"] == {"visits": 1, "users": {"alice": {"n": 1}}}
    assert api(base, "get", hostname=host, path="users.nobody").json()["value"] is None
    assert api(base, "get", hostname="bob-1.example.com").json()["value"] == {}


def test_what_the_api_sets_scripts_read_and_merge_keeps_the_other_keys(base: str) -> None:
    host = "bob-1.example.com"
    set_ = api(base, "set", hostname=host, path="config", value={"theme": "dark", "size": 1})
    assert set_.json() == {"hostname": host, "path": "config", "value": {"theme": "dark", "size": 1}}
    merged = api(base, "set", hostname=host, path="config", value={"size": 2}, merge=True).json()
    assert merged["value"] == {"theme": "dark", "size": 2}
    api(base, "set", hostname=host, path="deep.er.key", value=[1, 2])  # folders made on the way
    assert script(base, "/read", "bob-1")["state"] == {
        "config": {"theme": "dark", "size": 2}, "deep": {"er": {"key": [1, 2]}},
    }
    assert script(base, "/read", "alice-1")["state"].get("config") is None


def test_clear_removes_a_path_or_everything_when_asked(base: str) -> None:
    host = "bob-1.example.com"
    api(base, "set", hostname=host, path="a", value=1)
    api(base, "set", hostname=host, path="b", value={"c": 1, "d": 2})
    assert api(base, "clear", hostname=host, path="b.c").json() == {"hostname": host, "path": "b.c", "cleared": True}
    assert script(base, "/read", "bob-1")["state"]["b"] == {"d": 2}
    refused = api(base, "clear", hostname=host)
    assert refused.status_code == 400
    assert refused.json()["message"] == "give the `path` to clear, or clearAll: true to clear the whole state"
    assert api(base, "clear", hostname=host, clearAll=True).json()["cleared"] is True
    assert script(base, "/read", "bob-1")["state"] == {}


def test_bad_requests_are_json_errors_a_person_can_act_on(base: str) -> None:
    host = "alice-1.example.com"
    bad_path = api(base, "get", hostname=host, path="a..b")
    assert bad_path.status_code == 400 and bad_path.json()["error"] == "invalid_path"
    assert api(base, "get", path="a").status_code == 422  # no hostname
    not_object = api(base, "set", hostname=host, path="visits.x", value=1)
    assert not_object.status_code == 400
    assert not_object.json()["message"] == "shared.visits is not an object"
    full = api(base, "set", hostname=host, path="big", value="x" * 5000)
    assert full.status_code == 413 and full.json()["error"] == "state_full"
    assert "WEXEC_SHARED_TENANT_BYTES" in full.json()["message"]
