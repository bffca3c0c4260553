"""templates/* over real HTTP against `wexec serve`: the reference's calls and shapes, every
parameter and refusal, and every built-in template rendered, saved and requested.

The server re-scans scripts only once a minute here, so a generated script that answers at
once shows that `generate` made its route live itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.host.registry import UNITS
from runtime.templates import builtins
from tests.support import refused, running_server

API = "/api/v1/exec/templates"
ALICE = {"host": "alice-1.example.com"}
REFERENCE_METADATA = {"category", "tags", "description", "params", "version", "author"}
FETCH_JSON = "const res = await fetch('{{url}}');\nconsole.log(await res.json());"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tenants")
    for tenant in ("default/1", "alice/1"):
        (root / tenant).mkdir(parents=True)
    return root


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[httpx.Client]:
    args = ["--tenants-root", str(root), "--data", str(root.parent / "data")]
    with running_server(args, {"WEXEC_RELOAD_INTERVAL_MS": "60000"}) as url, \
            httpx.Client(base_url=url, timeout=30) as c:
        yield c


# list


def test_list_gives_the_reference_shape_with_ten_builtins(client: httpx.Client) -> None:
    body = client.get(f"{API}/list").json()
    assert body["count"] == len(body["templates"]) >= 10
    names = {t["name"] for t in body["templates"]}
    assert {"json-api", "webhook-hmac", "worker-counter", "rate-limiter", "cron-job",
            "ai-summarizer", "ai-proxy", "fetch-proxy", "form-handler", "crud-shared"} <= names
    for template in body["templates"]:
        assert REFERENCE_METADATA <= template["metadata"].keys(), template
        assert template["source"] == "builtin"


def test_list_filters_by_category_and_source(client: httpx.Client) -> None:
    api = client.get(f"{API}/list", params={"category": "api"}).json()
    assert api["count"] >= 2 and {t["metadata"]["category"] for t in api["templates"]} == {"api"}
    assert client.get(f"{API}/list", params={"category": "nothing-here"}).json() == {
        "count": 0, "templates": []}
    none = client.get(f"{API}/list", params={"includeBuiltin": "0", "includeCustom": "false"})
    assert none.json() == {"count": 0, "templates": []}
    refused(client.get(f"{API}/list", params={"includeBuiltin": "maybe"}), 422,
            "invalid_request", "includeBuiltin")


# the reference's own calls, in its order: create, list, preview, generate, update, delete


def test_the_reference_walkthrough(client: httpx.Client, root: Path) -> None:
    metadata = {"category": "api", "tags": ["http", "fetch"],
                "description": "Fetch a JSON resource and print the body.", "params": ["url"],
                "version": "1.0.0", "author": "hoody"}
    created = client.post(f"{API}/create-custom",
                          json={"name": "fetch-json", "code": FETCH_JSON, "metadata": metadata})
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["created"] is True and body["name"] == "fetch-json"
    assert body["path"] == "_wexec/templates/fetch-json.js"
    assert {**metadata, "name": "fetch-json"}.items() <= body["metadata"].items()
    assert (root / "default/1/_wexec/templates/fetch-json.js").read_text() == FETCH_JSON

    listed = client.get(f"{API}/list", params={"category": "api", "includeBuiltin": "false",
                                               "includeCustom": "true"}).json()
    assert listed["count"] == 1
    assert listed["templates"][0]["name"] == "fetch-json"
    assert listed["templates"][0]["source"] == "custom"

    preview = client.get(f"{API}/preview", params={
        "name": "fetch-json", "variables": '{"url":"https://api.example.com/items"}'}).json()
    assert preview["template"]["code"] == (
        "const res = await fetch('https://api.example.com/items');\n"
        "console.log(await res.json());")
    assert preview["template"]["originalCode"] == FETCH_JSON
    assert preview["template"]["substituted"] is True
    assert preview["template"]["metadata"]["params"] == ["url"]

    generated = client.post(f"{API}/generate", json={
        "name": "fetch-json", "variables": {"url": "https://api.example.com/items"},
        "outputPath": "scripts/fetch.js", "saveFile": False}).json()
    assert generated == {
        "generated": True, "template": "fetch-json", "code": preview["template"]["code"],
        "saved": False, "path": None, "variables": {"url": "https://api.example.com/items"},
        "missing": [], "route": None, "compileError": None,
    }
    assert not (root / "default/1/scripts/fetch.js").exists()

    updated = client.put(f"{API}/update-custom/fetch-json", json={
        "code": "const res = await fetch('{{url}}', { retries: {{retries}} });",
        "metadata": {"version": "1.1.0", "tags": ["http", "fetch", "retry"]}}).json()
    assert updated["updated"] is True and updated["name"] == "fetch-json"
    assert updated["metadata"]["version"] == "1.1.0"
    assert updated["metadata"]["tags"] == ["http", "fetch", "retry"]
    assert updated["metadata"]["params"] == ["url", "retries"]  # follows the code
    assert updated["metadata"]["author"] == "hoody"  # merged, not replaced
    assert updated["metadata"]["description"] == metadata["description"]

    assert client.delete(f"{API}/delete-custom/fetch-json").json() == {
        "deleted": True, "name": "fetch-json"}
    assert not (root / "default/1/_wexec/templates/fetch-json.js").exists()
    assert not (root / "default/1/_wexec/templates/fetch-json.json").exists()
    refused(client.get(f"{API}/preview", params={"name": "fetch-json"}), 404,
            "unknown_template", "fetch-json")


# preview


def test_preview_without_variables_fills_defaults_and_reports_what_is_missing(
    client: httpx.Client,
) -> None:
    template = client.get(f"{API}/preview", params={"name": "json-api"}).json()["template"]
    assert "{{" not in template["code"] and "{{resource}}" in template["originalCode"]
    assert template["substituted"] is True and template["missing"] == []
    given = client.get(f"{API}/preview", params={
        "name": "json-api", "variables": json.dumps({"resource": "books"})}).json()
    assert "books: found" in given["template"]["code"]
    client.post(f"{API}/create-custom", json={"name": "bare", "code": "return '{{word}}';"})
    try:
        bare = client.get(f"{API}/preview", params={"name": "bare"}).json()["template"]
        assert bare["substituted"] is False and bare["missing"] == ["word"]
        assert bare["code"] == "return '{{word}}';"
        number = client.get(f"{API}/preview", params={
            "name": "bare", "variables": json.dumps({"word": 42})}).json()["template"]
        assert number["code"] == "return '42';"  # non-strings as JSON text
    finally:
        client.delete(f"{API}/delete-custom/bare")


def test_preview_refusals(client: httpx.Client) -> None:
    refused(client.get(f"{API}/preview"), 422, "invalid_request", "name")
    refused(client.get(f"{API}/preview", params={"name": "no-such"}), 404, "unknown_template",
            "no-such", "templates/list")
    refused(client.get(f"{API}/preview", params={"name": "json-api", "variables": "{url"}),
            400, "invalid_variables", "JSON")
    refused(client.get(f"{API}/preview", params={"name": "json-api", "variables": "[1]"}),
            400, "invalid_variables", "object")


# generate


def test_generate_saves_a_live_route_and_never_replaces_a_file_unasked(
    client: httpx.Client, root: Path,
) -> None:
    body = {"name": "json-api", "variables": {"resource": "books"}, "saveFile": True,
            "outputPath": "gen/books.ts"}
    saved = client.post(f"{API}/generate", json=body).json()
    assert saved["saved"] is True and saved["path"] == "gen/books.ts"
    assert saved["route"] == "/gen/books" and saved["compileError"] is None
    assert (root / "default/1/gen/books.ts").read_text() == saved["code"]
    # live at once: the server's own re-scan would take a minute
    assert client.get("/gen/books", params={"q": "sec"}).json() == {
        "books": [{"id": 2, "name": "second"}], "count": 1}

    again = client.post(f"{API}/generate", json={**body, "variables": {"resource": "films"}})
    refused(again, 409, "conflict", "gen/books.ts", "overwrite")
    assert "books" in client.get("/gen/books").json()
    replaced = client.post(f"{API}/generate", json={
        **body, "variables": {"resource": "films"}, "overwrite": True})
    assert replaced.status_code == 200, replaced.text
    assert "films" in client.get("/gen/books").json()  # the new version, at once


def test_generate_to_the_default_path_and_a_file_that_is_no_route(
    client: httpx.Client, root: Path,
) -> None:
    saved = client.post(f"{API}/generate",
                        json={"name": "worker-counter", "saveFile": True}).json()
    assert saved["path"] == "counter.ts" and saved["route"] == "/counter"
    assert client.get("/counter").json()["count"] == 1
    note = client.post(f"{API}/generate", json={"name": "worker-counter", "saveFile": True,
                                                "outputPath": "notes/counter.txt"}).json()
    assert note["saved"] is True and note["route"] is None
    assert (root / "default/1/notes/counter.txt").is_file()


def test_generate_reports_a_script_that_does_not_compile(client: httpx.Client) -> None:
    client.post(f"{API}/create-custom", json={"name": "broken", "code": "return {{value}};"})
    try:
        saved = client.post(f"{API}/generate", json={
            "name": "broken", "variables": {"value": "(1 +"}, "saveFile": True,
            "outputPath": "broken.ts"}).json()
        assert saved["saved"] is True and saved["route"] == "/broken"
        assert "broken.ts" in saved["compileError"]
        assert client.get("/broken").status_code == 500
        good = client.post(f"{API}/generate", json={
            "name": "broken", "variables": {"value": "'good'"}, "saveFile": True,
            "outputPath": "broken.ts", "overwrite": True}).json()
        assert good["compileError"] is None and client.get("/broken").text == "good"
        bad = client.post(f"{API}/generate", json={
            "name": "broken", "variables": {"value": "(2 +"}, "saveFile": True,
            "outputPath": "broken.ts", "overwrite": True}).json()
        assert "previous version is still served" in bad["compileError"]
        assert client.get("/broken").text == "good"
    finally:
        client.delete(f"{API}/delete-custom/broken")


def test_generate_refusals(client: httpx.Client) -> None:
    refused(client.post(f"{API}/generate", json={}), 422, "invalid_request", "name")
    refused(client.post(f"{API}/generate", json={"name": "json-api", "variables": [1]}), 422,
            "invalid_request", "variables")
    refused(client.post(f"{API}/generate", json={"name": "json-api", "saveFile": "perhaps"}),
            422, "invalid_request", "saveFile")
    refused(client.post(f"{API}/generate", json={"name": "nope"}), 404, "unknown_template")
    for outside in ("../escape.ts", "/etc/escape.ts", "a/../../escape.ts", "nul\u0000.ts"):
        r = client.post(f"{API}/generate",
                        json={"name": "json-api", "saveFile": True, "outputPath": outside})
        refused(r, 403, "forbidden", "Path is excluded from access")
    client.post(f"{API}/create-custom", json={"name": "needs", "code": "return '{{a}}{{b}}';",
                                              "metadata": {"defaults": {"a": "x"}}})
    try:
        r = client.post(f"{API}/generate", json={"name": "needs", "saveFile": True})
        assert refused(r, 400, "missing_variables", "b")["missing"] == ["b"]
        unsaved = client.post(f"{API}/generate", json={"name": "needs"}).json()
        assert unsaved["code"] == "return 'x{{b}}';" and unsaved["missing"] == ["b"]
    finally:
        client.delete(f"{API}/delete-custom/needs")


# create, update, delete


def test_create_custom_refusals(client: httpx.Client) -> None:
    refused(client.post(f"{API}/create-custom", json={"name": "x"}), 422, "invalid_request",
            "code")
    refused(client.post(f"{API}/create-custom", json={"code": "1"}), 422, "invalid_request",
            "name")
    refused(client.post(f"{API}/create-custom", json={"name": "Bad Name!", "code": "1"}), 400,
            "invalid_template", "lower-case")
    refused(client.post(f"{API}/create-custom", json={"name": "../up", "code": "1"}), 400,
            "invalid_template")
    refused(client.post(f"{API}/create-custom", json={"name": "json-api", "code": "1"}), 409,
            "template_exists", "built-in")
    refused(client.post(f"{API}/create-custom", json={
        "name": "mismatch", "code": "'{{a}}'", "metadata": {"params": ["b"]}}), 400,
        "invalid_template", "{{a}}", "b")
    refused(client.post(f"{API}/create-custom", json={
        "name": "lang", "code": "1", "metadata": {"language": "python"}}), 400,
        "invalid_template", "typescript")
    assert client.post(f"{API}/create-custom", json={"name": "twice", "code": "1"}).is_success
    try:
        refused(client.post(f"{API}/create-custom", json={"name": "twice", "code": "2"}), 409,
                "template_exists", "update-custom")
    finally:
        client.delete(f"{API}/delete-custom/twice")


def test_a_typescript_custom_template_is_stored_as_ts(client: httpx.Client, root: Path) -> None:
    created = client.post(f"{API}/create-custom", json={
        "name": "typed", "code": "const n: number = {{n}};\nreturn { n };",
        "metadata": {"language": "typescript", "defaults": {"n": 1}}}).json()
    try:
        assert created["path"] == "_wexec/templates/typed.ts"
        assert created["metadata"]["params"] == ["n"]
        saved = client.post(f"{API}/generate", json={"name": "typed", "saveFile": True}).json()
        assert saved["path"] == "typed.ts" and client.get("/typed").json() == {"n": 1}
    finally:
        client.delete(f"{API}/delete-custom/typed")
    assert not (root / "default/1/_wexec/templates/typed.ts").exists()


def test_update_and_delete_refusals(client: httpx.Client, root: Path) -> None:
    refused(client.put(f"{API}/update-custom/json-api", json={"metadata": {"version": "2"}}),
            403, "builtin_template", "cannot be changed")
    refused(client.put(f"{API}/update-custom/nope", json={}), 404, "unknown_template", "nope")
    refused(client.delete(f"{API}/delete-custom/json-api"), 403, "builtin_template",
            "cannot be deleted")
    refused(client.delete(f"{API}/delete-custom/nope"), 404, "unknown_template", "nope")
    client.post(f"{API}/create-custom", json={"name": "upd", "code": "'{{a}}'"})
    try:
        refused(client.put(f"{API}/update-custom/upd", json={"metadata": {"params": ["z"]}}),
                400, "invalid_template", "z")
        refused(client.put(f"{API}/update-custom/upd", json={"metadata": {"tags": "x"}}), 400,
                "invalid_template", "tags")
        dropped = client.put(f"{API}/update-custom/upd", json={
            "code": "'{{b}}'", "metadata": {"defaults": {"b": "x"}, "language": "typescript"}})
        assert dropped.json()["metadata"]["language"] == "typescript"
        kept = client.put(f"{API}/update-custom/upd", json={"code": "'{{c}}'"}).json()
        assert kept["metadata"]["params"] == ["c"] and kept["metadata"]["defaults"] == {}
        folder = root / "default/1/_wexec/templates"
        assert (folder / "upd.ts").read_text() == "'{{c}}'" and not (folder / "upd.js").exists()
    finally:
        client.delete(f"{API}/delete-custom/upd")


def test_templates_belong_to_their_tenant(client: httpx.Client) -> None:
    client.post(f"{API}/create-custom", params={"execId": "1", "subdomain": "alice"},
                json={"name": "mine", "code": "return 'alice';"})
    try:
        def custom(**kw: Any) -> set[str]:
            listed = client.get(f"{API}/list", params={"includeBuiltin": "false"}, **kw).json()
            return {t["name"] for t in listed["templates"]}

        assert custom(headers=ALICE) == {"mine"}
        assert "mine" not in custom()
        refused(client.get(f"{API}/preview", params={"name": "mine"}), 404, "unknown_template")
        # the query names the tenant before the body does
        r = client.post(f"{API}/generate", params={"subdomain": "alice", "execId": "1"},
                        json={"name": "mine", "subdomain": "default", "execId": "1"})
        assert r.json()["code"] == "return 'alice';"
        refused(client.get(f"{API}/list", params={"execId": "9"}), 404, "unknown_tenant",
                "default/9")
        refused(client.post(f"{API}/create-custom", params={"subdomain": "Bad!", "execId": "1"},
                            json={"name": "x", "code": "1"}), 400, "invalid_tenant")
    finally:
        client.delete(f"{API}/delete-custom/mine", params={"subdomain": "alice", "execId": "1"})


def test_the_reference_folder_is_read_as_custom(client: httpx.Client, root: Path) -> None:
    folder = root / "default/1/_hoody/templates"
    folder.mkdir(parents=True)
    (folder / "legacy.js").write_text("return '{{greeting}}';\n")
    try:
        listed = client.get(f"{API}/list", params={"includeBuiltin": "false"}).json()
        legacy = next(t for t in listed["templates"] if t["name"] == "legacy")
        assert legacy["metadata"]["params"] == ["greeting"]
        assert client.post(f"{API}/generate", json={
            "name": "legacy", "variables": {"greeting": "hi"}}).json()["code"] == "return 'hi';\n"
        assert client.delete(f"{API}/delete-custom/legacy").json()["deleted"] is True
        assert not (folder / "legacy.js").exists()
    finally:
        (folder / "legacy.js").unlink(missing_ok=True)


# every built-in template, rendered with its defaults, saved and requested


def save(client: httpx.Client, name: str, variables: dict[str, Any] | None = None) -> str:
    """Generate built-in `name` under builtins/ and answer its route (live at once)."""
    output = f"builtins/{builtins()[name].metadata['outputPath']}"
    r = client.post(f"{API}/generate", json={
        "name": name, "variables": variables or {}, "saveFile": True, "outputPath": output,
        "overwrite": True})
    assert r.status_code == 200, r.text
    saved = r.json()
    assert saved["compileError"] is None and saved["missing"] == [], saved
    route: str = saved["route"]
    return route


def test_builtin_json_api(client: httpx.Client) -> None:
    route = save(client, "json-api")
    assert client.get(route).json() == {
        "items": [{"id": 1, "name": "first"}, {"id": 2, "name": "second"}], "count": 2}
    assert client.get(route, headers={"origin": "https://x.example"}).headers[
        "access-control-allow-origin"] == "*"
    assert client.post(route, json={"name": "third"}).status_code == 201
    assert client.post(route, json={}).status_code == 400
    assert client.delete(route).status_code == 405


def test_builtin_webhook_hmac(client: httpx.Client) -> None:
    route = save(client, "webhook-hmac", {"secret": "shhh-test"})
    body = b'{"event":"push","ref":"main"}'
    signature = "sha256=" + hmac.new(b"shhh-test", body, hashlib.sha256).hexdigest()
    headers = {"content-type": "application/json", "x-hub-signature-256": signature}
    accepted = client.post(route, content=body, headers=headers)
    assert accepted.json() == {"accepted": True, "payload": {"event": "push", "ref": "main"}}
    for bad in ("sha256=" + "0" * 64, "", signature[:-1]):
        r = client.post(route, content=body, headers={**headers, "x-hub-signature-256": bad})
        assert r.status_code == 401, r.text
    tampered = client.post(route, content=body.replace(b"main", b"evil"), headers=headers)
    assert tampered.status_code == 401


def test_builtin_worker_counter(client: httpx.Client) -> None:
    route = save(client, "worker-counter", {"start": 100})
    first, second = client.get(route).json(), client.get(route).json()
    assert (first["count"], second["count"]) == (101, 102)
    assert first["started"] == second["started"]


def test_builtin_rate_limiter(client: httpx.Client) -> None:
    route = save(client, "rate-limiter", {"limit": 3, "windowSeconds": 60})
    answers = [client.get(route) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["x-ratelimit-remaining"] for r in answers] == ["2", "1", "0", "0"]
    assert 0 < int(answers[3].headers["retry-after"]) <= 60


def test_builtin_cron_job(client: httpx.Client) -> None:
    route = save(client, "cron-job", {"schedule": "0 * * * *", "task": "tick"})
    body = client.get(route).json()
    assert body["ok"] is True and body["task"] == "tick" and body["runs"] >= 1
    if _has_unit("shared"):  # a serverless script's shared state lives in the host
        assert client.get(route).json()["runs"] == body["runs"] + 1
    generated = client.get(f"{API}/preview", params={
        "name": "cron-job", "variables": '{"schedule": "0 * * * *"}'}).json()
    assert generated["template"]["code"].startswith("// @schedule 0 * * * *\n")


def test_builtin_form_handler(client: httpx.Client) -> None:
    route = save(client, "form-handler", {"fields": "name, email"})
    page = client.get(route)
    assert page.headers["content-type"].startswith("text/html")
    assert 'name="email"' in page.text
    form = {"content-type": "application/x-www-form-urlencoded"}
    ok = client.post(route, content="name=Ada&email=ada%40example.com&extra=1", headers=form)
    assert ok.json() == {"ok": True, "received": {"name": "Ada", "email": "ada@example.com"}}
    missing = client.post(route, content="name=Ada&email=+", headers=form)
    assert missing.status_code == 422 and missing.json()["missing"] == ["email"]
    assert client.post(route, json={"name": "A", "email": "e"}).json()["ok"] is True


def test_builtin_crud_shared(client: httpx.Client) -> None:
    route = save(client, "crud-shared", {"collection": "todos"})
    assert route == "/builtins/notes/[[...id]]"
    base = "/builtins/notes"
    assert client.get(base).json() == {"todos": []}
    created = client.post(base, json={"title": "write tests", "id": "ignored"})
    assert created.status_code == 201
    todo = created.json()
    assert todo["title"] == "write tests" and todo["id"] != "ignored"
    assert client.get(f"{base}/{todo['id']}").json() == todo
    patched = client.patch(f"{base}/{todo['id']}", json={"done": True}).json()
    assert patched == {**todo, "done": True}
    assert client.put(f"{base}/{todo['id']}", json={"title": "t"}).json() == {
        "id": todo["id"], "title": "t"}
    assert client.get(base).json() == {"todos": [{"id": todo["id"], "title": "t"}]}
    assert client.delete(f"{base}/{todo['id']}").json() == {"deleted": todo["id"]}
    assert client.get(f"{base}/{todo['id']}").status_code == 404
    assert client.delete(f"{base}/{todo['id']}").status_code == 404
    assert client.post(base, json=[1]).status_code == 400


def _has_unit(name: str) -> bool:
    return any(unit.name == name for unit in UNITS)


needs_fetch = pytest.mark.skipif(not _has_unit("fetch"), reason=(
    "needs the fetch unit (issue 12), not merged into this branch yet; the template is written "
    "to its WHATWG API and WEXEC_FETCH_ALLOW_HOSTS"))
needs_ai = pytest.mark.skipif(not _has_unit("ai"), reason=(
    "needs the ai unit (issue 12), not merged into this branch yet; the templates are written "
    "to its generateText and openai.chat.completions.create API and WEXEC_AI_* settings"))


class _Upstream(BaseHTTPRequestHandler):
    """A local HTTP server standing for both an API behind the fetch proxy and an
    OpenAI-compatible provider (`/v1/chat/completions`, streaming when asked)."""

    def do_GET(self) -> None:
        self._echo(b"")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path.endswith("/chat/completions"):
            self._complete(json.loads(body))
        else:
            self._echo(body)

    def _echo(self, body: bytes) -> None:
        self._send(200, "application/json", json.dumps({
            "method": self.command, "path": self.path, "body": body.decode(),
            "authorization": self.headers.get("authorization"),
            "cookie": self.headers.get("cookie"),
        }).encode())

    def _complete(self, request: dict[str, Any]) -> None:
        prompt = " | ".join(m["content"] for m in request["messages"])
        words = f"echo: {prompt}".split(" ")
        base = {"id": "chatcmpl-1", "created": 1, "model": request["model"]}
        if not request.get("stream"):
            self._send(200, "application/json", json.dumps({
                **base, "object": "chat.completion",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": " ".join(words)}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": len(words), "total_tokens": 9},
            }).encode())
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        for i, word in enumerate(words):
            chunk = {**base, "object": "chat.completion.chunk", "choices": [{
                "index": 0, "delta": {"content": word if i == 0 else " " + word},
                "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def capable(tmp_path_factory: pytest.TempPathFactory, upstream: str) -> Iterator[httpx.Client]:
    """A server whose scripts may fetch from `upstream` and use it as their AI provider."""
    scripts = tmp_path_factory.mktemp("capable")
    env = {"WEXEC_FETCH_ALLOW_HOSTS": upstream, "WEXEC_AI_BASE_URL": f"http://{upstream}/v1",
           "WEXEC_AI_API_KEY": "test-key", "WEXEC_AI_MODEL": "test-model"}
    with running_server(["--scripts", str(scripts), "--data", str(scripts / ".data")], env) \
            as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


@needs_fetch
def test_builtin_fetch_proxy(capable: httpx.Client, upstream: str) -> None:
    route = save(capable, "fetch-proxy", {"upstream": f"http://{upstream}/base/"})
    assert route == "/builtins/proxy/[[...path]]"
    got = capable.get("/builtins/proxy/a/b", params={"x": "1"},
                      headers={"authorization": "Bearer t", "cookie": "session=s"}).json()
    assert got["method"] == "GET" and got["path"] == "/base/a/b?x=1"
    assert got["authorization"] == "Bearer t" and got["cookie"] is None  # only safe headers
    posted = capable.post("/builtins/proxy/items", content=b"raw body",
                          headers={"content-type": "text/plain"}).json()
    assert posted["method"] == "POST" and posted["body"] == "raw body"


@needs_ai
def test_builtin_ai_summarizer(capable: httpx.Client) -> None:
    route = save(capable, "ai-summarizer", {"maxWords": 12})
    body = capable.post(route, json={"text": "wexec runs scripts in wasm"}).json()
    assert "at most 12 words" in body["summary"] and "wexec runs scripts in wasm" in body["summary"]
    assert capable.get(route, params={"text": "hello"}).json()["summary"].endswith("hello")
    assert capable.post(route, json={}).status_code == 400


@needs_ai
def test_builtin_ai_proxy(capable: httpx.Client) -> None:
    route = save(capable, "ai-proxy", {"blocked": "password"})
    request = {"model": "test-model", "messages": [
        {"role": "user", "content": "mail ada@example.com about the launch"}]}
    plain = capable.post(route, json=request).json()
    assert plain["object"] == "chat.completion"
    content = plain["choices"][0]["message"]["content"]
    assert "[email]" in content and "ada@example.com" not in content  # redacted before sending
    blocked = capable.post(route, json={**request, "messages": [
        {"role": "user", "content": "what is the admin PASSWORD"}]})
    assert blocked.status_code == 403 and blocked.json()["error"]["type"] == "policy_violation"
    assert capable.post(route, json={"model": "m"}).status_code == 400
    with capable.stream("POST", route, json={**request, "stream": True}) as streamed:
        assert streamed.headers["content-type"].startswith("text/event-stream")
        events = [line for line in streamed.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]" and len(events) > 3
    text = "".join(json.loads(e[6:])["choices"][0]["delta"].get("content", "")
                   for e in events[:-1])
    assert text == content


def test_every_builtin_renders_to_code_without_placeholders() -> None:
    for name, template in builtins().items():
        assert template.metadata["params"], name
        assert set(template.metadata["defaults"]) == set(template.metadata["params"]), name
