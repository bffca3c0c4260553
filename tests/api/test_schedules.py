"""schedules/list, trigger, reload and history over real HTTP, and their error paths; the
scheduler's own timing (ticks, overlap, several processes) is tested in tests/schedules/."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from runtime.api.tokens import hash_token
from runtime.observe import logfiles
from runtime.schedules import fires
from tests.api.conftest import ADMIN_TOKEN, ALICE_TOKEN, PREFIX, Server
from tests.support import eventually, running_server, write_atomically, write_scripts

YEARLY = "0 0 1 1 *"  # never due while a test runs: runs here are the ones a test triggers
NEEDS_SCHEDULE = (f"// @schedule {YEARLY}\n"
                  "if (metadata.trigger !== 'schedule') throw new Error('run by ' + metadata.trigger);\n"
                  "return { ok: true };\n")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("tenants")
    for tenant in ("default/1", "alice/1", "bob/7"):
        write_scripts(root / tenant, {"hello.ts": "return 'hello';\n"})
    write_scripts(root / "bob/7", {"nightly.ts": f"// @schedule {YEARLY}\nreturn 1;\n"})
    # files change only through the API here, or as a test says: the reload loop stays out
    env = {"WEXEC_API_TOKEN": ADMIN_TOKEN, "WEXEC_RELOAD_INTERVAL_MS": "600000",
           "WEXEC_API_TENANT_TOKENS": json.dumps({"alice/1": hash_token(ALICE_TOKEN)})}
    with running_server(["--tenants-root", str(root), "--data", str(data)], env=env) as base, \
            httpx.Client(base_url=base, timeout=30,
                         headers={"authorization": f"Bearer {ADMIN_TOKEN}"}) as client:
        yield Server(base, root, client)


def write(server: Server, path: str, content: str, tenant: str = "default/1") -> httpx.Response:
    sub, exec_id = tenant.split("/")
    return server.client.post(f"{PREFIX}/scripts/write", json={
        "path": path, "content": content, "subdomain": sub, "execId": exec_id})


def listed(server: Server, tenant: str = "default/1") -> dict[str, dict[str, object]]:
    sub, exec_id = tenant.split("/")
    r = server.client.get(f"{PREFIX}/schedules/list", params={"subdomain": sub, "execId": exec_id})
    assert r.status_code == 200, r.text
    assert r.json()["count"] == len(r.json()["schedules"])
    return {item["scriptRel"]: item for item in r.json()["schedules"]}


def trigger(server: Server, script_path: str, **extra: object) -> httpx.Response:
    return server.client.post(f"{PREFIX}/schedules/trigger",
                              json={"scriptPath": script_path, **extra})


def test_a_written_script_is_listed_with_its_next_tick(server: Server) -> None:
    assert write(server, "jobs/report.ts", NEEDS_SCHEDULE).status_code == 200
    item = listed(server)["jobs/report.ts"]
    assert item["expression"] == YEARLY
    assert item["nextRun"].endswith("-01-01T00:00:00Z")  # type: ignore[union-attr]
    assert str(item["registeredAt"]).endswith("Z") and item["running"] is False
    assert item["scriptPath"] == str(server.tenant("default/1") / "jobs/report.ts")
    assert "nightly.ts" in listed(server, "bob/7")  # registered at start-up
    assert "jobs/report.ts" not in listed(server, "bob/7")


def test_trigger_runs_the_script_as_its_schedule_would(server: Server) -> None:
    write(server, "jobs/report.ts", NEEDS_SCHEDULE)
    fired = server.client.get(f"{PREFIX}/monitor/stats").json()["cron"]["fired"]
    for path in ("jobs/report.ts", "./jobs/report.ts",
                 str(server.tenant("default/1") / "jobs/report.ts")):
        r = trigger(server, path)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["triggered"] is True and body["status"] == "ok", body
        assert body["httpStatus"] == 200 and body["scriptRel"] == "jobs/report.ts"
        assert len(body["runId"]) == 32 and body["durationMs"] >= 0
    assert server.client.get(f"{PREFIX}/monitor/stats").json()["cron"]["fired"] == fired + 3
    # a client's request is not a scheduled run
    assert httpx.get(f"{server.base}/jobs/report").status_code == 500


def test_a_failing_or_slow_run_says_so(server: Server) -> None:
    write(server, "boom.ts", f"// @schedule {YEARLY}\nthrow new Error('disk full');\n")
    body = trigger(server, "boom.ts").json()
    assert body["status"] == "error" and body["httpStatus"] == 500
    assert "disk full" in body["error"]
    write(server, "slow.ts", f"// @schedule {YEARLY}\n// @timeout 200\n"
          "await new Promise(r => setTimeout(r, 5000));\nreturn 1;\n")
    body = trigger(server, "slow.ts").json()
    assert body["status"] == "timeout" and body["httpStatus"] == 504
    assert body["durationMs"] < 3000 and "200" in body["error"]


def test_a_trigger_while_the_script_runs_is_skipped(server: Server) -> None:
    write(server, "long.ts", f"// @schedule {YEARLY}\n"
          "await new Promise(r => setTimeout(r, 1500));\nreturn 1;\n")
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(trigger, server, "long.ts")
        time.sleep(0.5)
        assert listed(server)["long.ts"]["running"] is True
        second = trigger(server, "long.ts").json()
        assert second["triggered"] is False and second["status"] == "skipped"
        assert "still going on" in second["error"]
        assert first.result().json()["status"] == "ok"
    assert listed(server)["long.ts"]["running"] is False


def test_a_token_script_needs_force(server: Server) -> None:
    write(server, "guarded.ts", f"// @schedule {YEARLY}\n// @token cron-only-secret\nreturn 1;\n")
    r = trigger(server, "guarded.ts")
    assert r.status_code == 403 and r.json()["error"] == "token_protected"
    assert "force: true" in r.json()["message"] and "cron-only-secret" not in r.text
    r = trigger(server, "guarded.ts", force=True)
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_trigger_error_paths(server: Server) -> None:
    r = trigger(server, "missing.ts")
    assert r.status_code == 404 and "missing.ts" in r.json()["message"]
    r = trigger(server, "hello.ts")
    assert r.status_code == 400 and r.json()["error"] == "not_scheduled"
    assert "// @schedule" in r.json()["message"]
    r = trigger(server, "/etc/passwd")
    assert r.status_code == 403 and "Path is excluded from access" in r.json()["message"]
    r = trigger(server, "../bob/7/nightly.ts")
    assert r.status_code == 403
    assert server.client.post(f"{PREFIX}/schedules/trigger", json={}).status_code == 422


def test_a_bad_expression_is_refused_on_write_with_its_line(server: Server) -> None:
    r = write(server, "bad.ts", "// @description nightly\n// @schedule 61 * * * *\nreturn 1;\n")
    assert r.status_code == 400, r.text
    assert "line 2" in r.text and "cron" in r.text
    assert "bad.ts" not in listed(server)


def test_removing_the_directive_or_the_script_unregisters_it(server: Server) -> None:
    write(server, "gone.ts", f"// @schedule {YEARLY}\nreturn 1;\n")
    write(server, "edited.ts", f"// @schedule {YEARLY}\nreturn 1;\n")
    assert {"gone.ts", "edited.ts"} <= listed(server).keys()
    r = server.client.delete(f"{PREFIX}/scripts/delete", params={"path": "gone.ts", "confirm": "true"})
    assert r.status_code == 200 and "gone.ts" not in listed(server)
    # edited behind the server's back: reload's dry run shows the diff and applies nothing
    write_atomically(server.tenant("default/1") / "edited.ts", "return 1;\n")
    write_atomically(server.tenant("default/1") / "fresh.ts", "// @schedule */5 * * * *\nreturn 1;\n")
    r = server.client.post(f"{PREFIX}/schedules/reload", json={"dry_run": True})
    assert r.status_code == 200, r.text
    dry = r.json()
    assert dry["dryRun"] is True and "edited.ts" in dry["removed"] and "fresh.ts" in dry["added"]
    assert "jobs/report.ts" in dry["kept"]
    assert "edited.ts" in listed(server) and "fresh.ts" not in listed(server)
    applied = server.client.post(f"{PREFIX}/schedules/reload").json()
    assert applied["removed"] == ["edited.ts"] and applied["added"] == ["fresh.ts"]
    assert "edited.ts" not in listed(server) and listed(server)["fresh.ts"]["expression"] == "*/5 * * * *"
    again = server.client.post(f"{PREFIX}/schedules/reload", json={"dry_run": False}).json()
    assert again["added"] == again["removed"] == [] and "fresh.ts" in again["kept"]


def test_history_filters_and_bounds(server: Server) -> None:
    write(server, "hist.ts", f"// @schedule {YEARLY}\nreturn 1;\n")
    before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
    ids = [trigger(server, "hist.ts").json()["runId"] for _ in range(3)]
    r = server.client.get(f"{PREFIX}/schedules/history",
                          params={"scriptPath": "hist.ts", "limit": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [e["runId"] for e in body["entries"]] == ids[::-1][:2]  # newest first
    assert body["count"] == 2 and body["truncated"] is True
    entry = body["entries"][0]
    assert entry["scriptRel"] == "hist.ts" and entry["trigger"] == "manual"
    assert entry["status"] == "ok" and entry["httpStatus"] == 200 and entry["tick"] is None
    everything = server.client.get(f"{PREFIX}/schedules/history", params={"since": before}).json()
    assert {e["scriptRel"] for e in everything["entries"]} >= {"hist.ts"}
    later = server.client.get(f"{PREFIX}/schedules/history",
                              params={"since": "2999-01-01T00:00:00Z"}).json()
    assert later == {"entries": [], "count": 0, "truncated": False}
    absolute = str(server.tenant("default/1") / "hist.ts")
    assert server.client.get(f"{PREFIX}/schedules/history", params={
        "scriptPath": absolute}).json()["count"] == 3
    for params in ({"limit": 1001}, {"limit": 0}):
        assert server.client.get(f"{PREFIX}/schedules/history", params=params).status_code == 422
    r = server.client.get(f"{PREFIX}/schedules/history", params={"since": "yesterday"})
    assert r.status_code == 400 and "ISO 8601" in r.json()["message"]


def test_history_reads_rotated_compressed_files_when_asked(server: Server, data: Path) -> None:
    write(server, "rot.ts", f"// @schedule {YEARLY}\nreturn 1;\n")
    first = trigger(server, "rot.ts").json()["runId"]
    # the server's fires.log rotates between two runs, as a process that wrote past its size
    # rotates it: renamed aside, then compressed on a thread
    folder = data / "schedules" / "default-1"
    fd = os.open(folder / "fires.log", os.O_WRONLY | os.O_APPEND)
    try:
        assert logfiles.rotated(folder, fires.STEM, fd, 1, fires.DISK_BYTES, 0.0)
    finally:
        os.close(fd)

    def compressed() -> list[str]:
        return [f.name for f in logfiles.tenant_files(folder, fires.STEM) if f.compressed]

    eventually(lambda: len(compressed()) == 1)
    assert not (folder / "fires.log").exists()
    second = trigger(server, "rot.ts").json()["runId"]
    history = f"{PREFIX}/schedules/history"
    current = server.client.get(history, params={"scriptPath": "rot.ts"}).json()["entries"]
    assert [e["runId"] for e in current] == [second]
    both = server.client.get(history, params={"scriptPath": "rot.ts",
                                              "includeRotated": "true"}).json()
    assert [e["runId"] for e in both["entries"]] == [second, first]
    assert both["count"] == 2 and not both["truncated"]
    newest = server.client.get(history, params={"scriptPath": "rot.ts", "limit": 1,
                                                "includeRotated": "true"}).json()
    assert [e["runId"] for e in newest["entries"]] == [second] and newest["truncated"]


def test_tenants_see_only_their_own_schedules(server: Server) -> None:
    with httpx.Client(base_url=server.base,
                      headers={"authorization": f"Bearer {ALICE_TOKEN}"}) as alice:
        assert alice.get(f"{PREFIX}/schedules/list").json()["count"] == 0
        r = alice.get(f"{PREFIX}/schedules/list", params={"subdomain": "bob", "execId": "7"})
        assert r.status_code == 403
        r = alice.post(f"{PREFIX}/schedules/trigger", json={"scriptPath": "nightly.ts"})
        assert r.status_code == 404
        assert alice.get(f"{PREFIX}/schedules/history").json()["count"] == 0
    assert httpx.get(f"{server.base}{PREFIX}/schedules/list").status_code == 401
