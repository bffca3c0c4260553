"""magic-comments/*: the schema is the parser's, and edits touch only directive lines."""

from __future__ import annotations

import httpx

from runtime.api.magic_comments import changes_of, edit
from runtime.compiler.magic import DIRECTIVES, parse_magic_comments
from tests.api.conftest import PREFIX, Server

ALICE = {"execId": "1", "subdomain": "alice"}
HOST = {"host": "alice-1.example.com"}


def write(api: Server, path: str, content: str) -> None:
    r = api.client.post(f"{PREFIX}/scripts/write",
                        json={"path": path, "content": content, **ALICE})
    assert r.status_code == 200, r.text


def test_schema_lists_every_directive_the_parser_knows(api: Server) -> None:
    schema = api.client.get(f"{PREFIX}/magic-comments/schema").json()
    assert [d["name"] for d in schema["directives"]] == [d.name for d in DIRECTIVES]
    mode = next(d for d in schema["directives"] if d["name"] == "mode")
    assert mode["default"] == "serverless" and mode["values"] == ["worker", "serverless"]
    assert set(schema["model"]["properties"]) >= {"mode", "cors", "timeout", "token", "env"}
    # every example in the schema parses, alone, as the parser reads it
    for directive in schema["directives"]:
        source = directive["syntax"] + ("\n// @mode worker" if directive["name"] == "websocket"
                                        else "") + "\nreturn 1;\n"
        parse_magic_comments(source)


def test_read_shows_directives_as_written_and_parsed_without_secrets(api: Server) -> None:
    write(api, "mc/read.ts", "// @mode worker\n// @token hunter2\n// @env A=1\nreturn 1;\n")
    body = api.client.get(f"{PREFIX}/magic-comments/read",
                          params={"path": "mc/read.ts", **ALICE}).json()
    assert body["valid"] and body["comments"]["mode"] == "worker"
    assert [(d["line"], d["name"]) for d in body["directives"]] == [
        (1, "mode"), (2, "token"), (3, "env")]
    assert "hunter2" not in str(body)
    (api.tenant("alice/1") / "mc" / "bad.ts").write_text("// @mode sideways\nreturn 1;\n")
    bad = api.client.get(f"{PREFIX}/magic-comments/read",
                         params={"path": "mc/bad.ts", **ALICE}).json()
    assert not bad["valid"] and bad["comments"] is None and bad["errors"][0]["line"] == 1
    missing = api.client.get(f"{PREFIX}/magic-comments/read", params={"path": "mc/x.ts", **ALICE})
    assert missing.status_code == 404
    outside = api.client.get(f"{PREFIX}/magic-comments/read",
                             params={"path": "../../bob/7/hello.ts", **ALICE})
    assert outside.status_code == 403
    assert api.client.get(f"{PREFIX}/magic-comments/read", params=ALICE).status_code == 422


def test_update_sets_and_removes_directives_and_serves_the_result(api: Server) -> None:
    write(api, "mc/up.ts", "// @cors *\n// @description Old\nconst a = 1; // @mode worker\n"
                           "return { a, cors: 'kept' };\n")
    dry = api.client.put(f"{PREFIX}/magic-comments/update", json={
        "path": "mc/up.ts", "comments": {"cors": None, "timeout": 5000}, "dry_run": True,
        **ALICE}).json()
    assert dry["changed"] and not dry["written"] and dry["comments"]["timeout"] == 5000
    assert "-// @cors *" in dry["diff"] and "+// @timeout 5000" in dry["diff"]
    assert (api.tenant("alice/1") / "mc/up.ts").read_text().startswith("// @cors *")
    r = api.client.put(f"{PREFIX}/magic-comments/update", json={
        "path": "mc/up.ts", "comments": "// @cors reflective\n// @description New", **ALICE})
    assert r.status_code == 200 and r.json()["written"]
    assert (api.tenant("alice/1") / "mc/up.ts").read_text() == (
        "// @cors reflective\n// @description New\nconst a = 1; // @mode worker\n"
        "return { a, cors: 'kept' };\n")
    served = httpx.get(f"{api.base}/mc/up", headers={**HOST, "origin": "https://x.example"})
    assert served.headers["access-control-allow-origin"] == "https://x.example"
    assert served.json() == {"a": 1, "cors": "kept"}


def test_an_edit_that_would_not_parse_writes_nothing(api: Server) -> None:
    write(api, "mc/keep.ts", "// @mode serverless\nreturn 1;\n")
    for comments, needle in (({"websocket": True}, "@websocket requires @mode worker"),
                             ({"timeout": "soon"}, "line 2"),
                             ({"colour": "red"}, "unknown directive 'colour'"),
                             ("not a directive", "is not a directive line")):
        r = api.client.put(f"{PREFIX}/magic-comments/update",
                           json={"path": "mc/keep.ts", "comments": comments, **ALICE})
        assert r.status_code == 400 and r.json()["error"] == "invalid_magic_comments", comments
        assert needle in r.json()["message"]
    assert (api.tenant("alice/1") / "mc/keep.ts").read_text() == "// @mode serverless\nreturn 1;\n"
    r = api.client.put(f"{PREFIX}/magic-comments/update",
                       json={"path": "mc/notes.md", "comments": {"mode": "worker"}, **ALICE})
    assert r.status_code == 400 and r.json()["error"] == "not_a_script"
    assert api.client.put(f"{PREFIX}/magic-comments/update",
                          json={"path": "mc/keep.ts"}).status_code == 422


def test_bulk_update_edits_matching_scripts_and_reports_each(api: Server) -> None:
    write(api, "bulk/a.ts", "return 'a';\n")
    write(api, "bulk/sub/b.ts", "// @log-level full\nreturn 'b';\n")
    write(api, "bulk/c.js", "return 'c';\n")
    write(api, "bulk/ws.ts", "// @websocket\n// @mode worker\nreturn 'ws';\n")
    body = {"directory": "bulk", "comments": {"mode": "serverless", "label": "bulk"}, **ALICE}
    dry = api.client.post(f"{PREFIX}/magic-comments/bulk-update", json=body | {"dry_run": True})
    report = dry.json()
    assert report["dry_run"] and report["updated"] == 2 and report["failed"] == 1
    assert (api.tenant("alice/1") / "bulk/a.ts").read_text() == "return 'a';\n"
    done = api.client.post(f"{PREFIX}/magic-comments/bulk-update", json=body).json()
    by_path = {r["path"]: r for r in done["results"]}
    assert set(by_path) == {"bulk/a.ts", "bulk/sub/b.ts", "bulk/ws.ts"}  # .ts only
    assert by_path["bulk/ws.ts"]["error"] and not by_path["bulk/ws.ts"]["written"]
    assert (api.tenant("alice/1") / "bulk/sub/b.ts").read_text() == (
        "// @log-level full\n// @mode serverless\n// @label bulk\nreturn 'b';\n")
    listed = api.client.get(f"{PREFIX}/scripts/list",
                            params={"label": "bulk", **ALICE}).json()["scripts"]
    assert [s["path"] for s in listed] == ["bulk/a.ts", "bulk/sub/b.ts"]
    flat = api.client.post(f"{PREFIX}/magic-comments/bulk-update", json=body | {
        "recursive": False, "extension": ".js"}).json()
    assert [r["path"] for r in flat["results"]] == ["bulk/c.js"]
    r = api.client.post(f"{PREFIX}/magic-comments/bulk-update", json=body | {"extension": ".md"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_extension"


def test_edits_keep_block_comments_and_shebangs_whole() -> None:
    block = "/*\n * @cors *\n * @timeout 100\n */\nreturn 1;\n"
    edited = edit(block, changes_of({"cors": "reflective", "timeout": None, "ai_model": "a/b"}))
    assert edited == "/*\n * @cors reflective\n */\n// @ai-model a/b\nreturn 1;\n"
    assert edit("#!/usr/bin/env wexec\nreturn 1;", changes_of({"mode": "worker"})) == \
        "#!/usr/bin/env wexec\n// @mode worker\nreturn 1;"
    assert edit("return 1", changes_of({"env": {"A": "1", "B": "x y"}, "tags": ["a", "b"]})) == \
        "// @env A=1\n// @env B=x y\n// @tags a, b\nreturn 1"
    crlf = edit("// @mode worker\r\nreturn 1;\r\n", changes_of({"cors": "*"}))
    assert crlf == "// @mode worker\r\n// @cors *\r\nreturn 1;\r\n"
