"""`logs/*` over HTTP against a real `wexec serve`: redaction, rotation, search, streaming,
clearing, and every tenant kept to its own files."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import eventually, running_server, write_scripts

API = "/api/v1/exec/logs"
TOKEN = "tok-3f9a1c77e2"
ALICE = {"subdomain": "alice", "execId": "1"}
SCRIPTS = {
    "default/1/say.ts": "console.log('said', metadata.query.m || '');\nreturn 'ok';\n",
    "default/1/secret.ts": (
        f"// @token {TOKEN}\n// @log-level full\n"
        f"console.log('the token is {TOKEN}', JSON.stringify(req.headers));\nreturn 'ok';\n"
    ),
    "default/1/colour.ts": "console.log('\\x1b[31mred\\x1b[0m \\x1b]0;title\\x07plain');\nreturn 1;\n",
    "default/1/bulk.ts": "console.log(metadata.query.m + ' ' + 'x'.repeat(4000));\nreturn 1;\n",
    "alice/1/mine.ts": "console.log('alice-private-marker');\nreturn 'alice';\n",
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("tenants")
    write_scripts(root, SCRIPTS)
    env = {"WEXEC_LOG_ROTATE_BYTES": str(64 * 1024),
           "WEXEC_TENANT_LOG_DISK_BYTES": str(1024 * 1024)}
    with running_server(["--tenants-root", str(root), "--data", str(data)], env) as url, \
            httpx.Client(base_url=url, timeout=30) as c:
        yield c


def _search(client: httpx.Client, **body: object) -> httpx.Response:
    return client.post(f"{API}/search", json=body)


def _said(client: httpx.Client, marker: str) -> None:
    assert client.get("/say", params={"m": marker}).status_code == 200


def test_a_token_in_console_output_is_stored_redacted(client: httpx.Client, data: Path) -> None:
    r = client.get("/secret", headers={"authorization": f"Bearer {TOKEN}", "cookie": "sid=c00kie"})
    assert r.status_code == 200
    eventually(lambda: bool(_search(client, query="the token is").json()["count"]))
    entry = _search(client, query="the token is").json()["matches"][0]["entry"]
    assert entry["console"][0]["msg"].startswith("the token is [REDACTED]")
    assert entry["headers"]["cookie"] == "[REDACTED]"
    assert _search(client, query=TOKEN).json()["count"] == 0
    assert _search(client, query="c00kie").json()["count"] == 0
    assert all(TOKEN not in p.read_text() for p in (data / "logs").glob("*.log"))


def test_terminal_control_never_reaches_the_log(client: httpx.Client, data: Path) -> None:
    client.get("/colour")
    eventually(lambda: bool(_search(client, query="plain").json()["count"]))
    msg = _search(client, query="plain").json()["matches"][0]["entry"]["console"][0]["msg"]
    assert msg == "red plain"
    assert "\\u001b" not in (data / "logs" / "default-1.log").read_text()


def test_read_answers_the_last_lines_or_one_request(client: httpx.Client) -> None:
    for marker in ("read-a", "read-b", "read-c"):
        _said(client, marker)
    eventually(lambda: bool(_search(client, query="read-c").json()["count"]))
    last = client.post(f"{API}/read", json={"file": "default-1.log", "lines": 2, "tail": True})
    assert last.status_code == 200
    assert [e["query"]["m"] for e in last.json()["lines"]] == ["read-b", "read-c"]
    rid = _search(client, query="read-a").json()["matches"][0]["entry"]["id"]
    one = client.post(f"{API}/read", json={"executionId": rid}).json()
    assert one["count"] == 1 and one["lines"][0]["console"][0]["msg"] == "said read-a"
    found = client.post(f"{API}/read", json={"search": "READ-B", "lines": 5}).json()
    assert [e["query"]["m"] for e in found["lines"]] == ["read-b"]


def test_a_rotated_compressed_log_is_listed_searched_and_read(client: httpx.Client) -> None:
    assert client.get("/bulk", params={"m": "first-bulk-marker"}).status_code == 200
    for n in range(40):  # 40 lines of 4 KB: past the 64 KiB rotation size twice
        client.get("/bulk", params={"m": f"bulk-{n}"})

    def rotated() -> list[dict]:
        logs = client.get(f"{API}/list", params={"type": "rotated"}).json()["logs"]
        return [f for f in logs if f["compressed"]]

    eventually(lambda: bool(rotated()), timeout_s=10)
    _said(client, "after-the-bulk")  # the last batch may have rotated the file: a current one
    eventually(lambda: bool(_search(client, query="after-the-bulk").json()["count"]))
    listed = client.get(f"{API}/list").json()
    assert listed["logs"][0] == {**listed["logs"][0], "file": "default-1.log", "type": "current"}
    assert all(f["file"].startswith("default-1.") for f in listed["logs"])
    found = _search(client, regex=r"first-bulk-mark[e]r", files=[f["file"] for f in rotated()]).json()
    assert found["count"] == 1 and found["matches"][0]["file"].endswith(".log.zst")
    oldest = rotated()[-1]["file"]
    head = client.post(f"{API}/read", json={"file": oldest, "lines": 1, "tail": False}).json()
    assert head["count"] == 1 and {"id", "script", "status"} <= head["lines"][0].keys()


def test_search_errors_are_400_and_no_regex_hangs_it(client: httpx.Client) -> None:
    bad = _search(client, regex="(unclosed")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_regex"
    assert "missing )" in bad.json()["message"]
    assert _search(client, regex=r"(a)\1").status_code == 400  # backreferences: not RE2
    assert _search(client).status_code == 400
    _said(client, "a" * 5000 + "!")
    eventually(lambda: bool(_search(client, query="a" * 5000).json()["count"]))
    started = time.monotonic()
    r = _search(client, regex=r"(a+)+$", caseSensitive=True)  # exponential for backtracking
    assert r.status_code == 200 and time.monotonic() - started < 5


def test_search_honours_case_limit_and_files(client: httpx.Client) -> None:
    for n in range(3):
        _said(client, f"CaseMarker-{n}")
    eventually(lambda: _search(client, query="casemarker").json()["count"] == 3)
    assert _search(client, query="casemarker", caseSensitive=True).json()["count"] == 0
    limited = _search(client, query="casemarker", limit=2).json()
    assert limited["count"] == 2 and limited["truncated"] is True
    missing = _search(client, query="x", files=["nope.log"])
    assert missing.status_code == 404 and missing.json()["error"] == "log_not_found"


def test_the_stream_delivers_a_line_written_after_the_client_connected(client: httpx.Client) -> None:
    seen: list[str] = []
    connected = threading.Event()

    def listen() -> None:
        with client.stream("GET", f"{API}/stream",
                           params={"follow": "true", "lines": 0}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            connected.set()
            for line in r.iter_lines():
                seen.append(line)
                if "streamed-after-connect" in line:
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(10)
    time.sleep(0.3)
    _said(client, "streamed-after-connect")
    listener.join(10)
    assert not listener.is_alive()
    assert any(line.startswith("data: ") and "streamed-after-connect" in line for line in seen)


def test_the_stream_without_follow_sends_the_last_lines_and_ends(client: httpx.Client) -> None:
    _said(client, "history-marker")
    eventually(lambda: bool(_search(client, query="history-marker").json()["count"]))
    r = client.get(f"{API}/stream", params={"lines": 1})
    events = [line for line in r.text.splitlines() if line.startswith("data: ")]
    assert len(events) == 1 and "history-marker" in events[0]


def test_a_tenant_sees_only_its_own_logs(client: httpx.Client) -> None:
    assert client.get("/mine", headers={"host": "alice-1.example.com"}).text == "alice"
    eventually(lambda: bool(_search(client, query="alice-private", **ALICE).json()["count"]))
    assert _search(client, query="alice-private").json()["count"] == 0
    assert [f["file"] for f in client.get(f"{API}/list", params=ALICE).json()["logs"]] == ["alice-1.log"]
    for name in ("alice-1.log", "../logs/alice-1.log", "/etc/passwd"):
        r = client.post(f"{API}/read", json={"file": name})
        assert r.status_code == 404, name
    r = client.get(f"{API}/stream", params={"file": "alice-1.log"})
    assert r.status_code == 404
    assert client.get(f"{API}/list", params={"execId": "9", "subdomain": "nobody"}).status_code == 404


def test_clear_needs_confirm_and_keeps_to_the_tenant(client: httpx.Client) -> None:
    refused = client.delete(f"{API}/clear", params=ALICE)
    assert refused.status_code == 400 and "confirm=true" in refused.json()["message"]
    recent = client.delete(f"{API}/clear", params={**ALICE, "confirm": "true", "olderThanDays": 1})
    assert recent.json()["count"] == 0
    cleared = client.delete(f"{API}/clear", params={**ALICE, "confirm": "true"}).json()
    assert cleared["cleared"] == ["alice-1.log"] and cleared["freedBytes"] > 0
    assert _search(client, query="alice-private", **ALICE).json()["count"] == 0
    assert client.post(f"{API}/read", json={"lines": 1}).json()["count"] == 1  # default-1 kept
    client.get("/mine", headers={"host": "alice-1.example.com"})  # the cleared file fills again
    eventually(lambda: bool(_search(client, query="alice-private", **ALICE).json()["count"]))
