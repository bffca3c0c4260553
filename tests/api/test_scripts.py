"""scripts/*: read, write, delete, list, tree, move, over a real server; a write is served at once."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.api.conftest import PREFIX, Server

ALICE = {"execId": "1", "subdomain": "alice"}


def write(api: Server, path: str, content: str, **fields: object) -> httpx.Response:
    return api.client.post(f"{PREFIX}/scripts/write",
                           json={"path": path, "content": content, **ALICE, **fields})


def test_a_written_script_answers_its_route_before_the_write_returns(api: Server) -> None:
    with httpx.Client(base_url=api.base, headers={"host": "alice-1.example.com"}) as visitor:
        for version in range(1, 6):  # same size each time: a stat alone cannot tell them apart
            r = write(api, "live.ts", f"return {{ version: {version} }};\n")
            assert r.status_code == 200, r.text
            assert visitor.get("/live").json() == {"version": version}
        body = r.json()
        assert body["success"] and body["validated"] and body["route"] == "/live"
        assert body["created"] is False and body["size"] == len("return { version: 5 };\n")
        assert body["validation"]["valid"] and body["compileError"] is None


def test_write_creates_folders_unless_told_not_to(api: Server) -> None:
    r = write(api, "deep/er/[id].ts", "return metadata.parameters;\n")
    assert r.status_code == 200 and r.json()["created"] and r.json()["route"] == "/deep/er/[id]"
    got = httpx.get(f"{api.base}/deep/er/42", headers={"host": "alice-1.x"})
    assert got.json() == {"id": "42"}
    r = write(api, "missing/x.ts", "return 1;", createDirs=False)
    assert r.status_code == 404 and "creating folders was not asked for" in r.json()["message"]


def test_write_refuses_a_script_that_fails_validation_with_the_report(api: Server) -> None:
    r = write(api, "broken.ts", "// @mode sideways\nreturn {;\nrequire('lodash');\n")
    assert r.status_code == 400
    err = r.json()
    assert err["error"] == "validation_failed" and err["message"].startswith(
        "Script validation failed")
    results = err["validation"]["results"]
    assert not err["validation"]["valid"]
    assert results["syntax"]["errors"][0]["line"] == 2
    assert results["magicComments"]["errors"][0]["line"] == 1
    assert results["dependencies"]["missing"] == ["lodash"]
    assert not (api.tenant("alice/1") / "broken.ts").exists()


def test_validate_false_stores_anything_and_says_what_will_not_run(api: Server) -> None:
    write(api, "keeps.ts", "return 'good';\n")
    r = write(api, "keeps.ts", "return {;\n", validate=False)
    assert r.status_code == 200 and r.json()["validated"] is False
    assert "keeps.ts" in r.json()["compileError"]
    assert (api.tenant("alice/1") / "keeps.ts").read_text() == "return {;\n"
    assert httpx.get(f"{api.base}/keeps", headers={"host": "alice-1.x"}).text == "good"


def test_json_is_checked_and_other_files_stored_as_they_are(api: Server) -> None:
    r = write(api, "data/config.json", '{"a": 1,}')
    assert r.status_code == 400 and r.json()["error"] == "invalid_json"
    assert r.json()["message"].startswith("Invalid JSON") and r.json()["line"] == 1
    assert write(api, "data/config.json", '{"a": 1,}', validate=False).status_code == 200
    assert write(api, "data/config.json", '{"a": 1}').status_code == 200
    for name in ("notes.md", "deploy.yaml", ".env"):
        r = write(api, name, "anything {{ at all")
        assert r.status_code == 200 and r.json()["route"] is None, name
        assert (api.tenant("alice/1") / name).read_text() == "anything {{ at all"


@pytest.mark.parametrize("path", ["../bob/7/hello.ts", "/etc/passwd", "a/../../x.ts", "x\0.ts"])
def test_paths_outside_the_tenant_are_excluded(api: Server, path: str) -> None:
    for r in (write(api, path, "return 1;"),
              api.client.get(f"{PREFIX}/scripts/read", params={"path": path, **ALICE}),
              api.client.delete(f"{PREFIX}/scripts/delete",
                                params={"path": path, "confirm": "true", **ALICE}),
              api.client.post(f"{PREFIX}/scripts/move",
                              json={"from": "hello.ts", "to": path, **ALICE})):
        assert r.status_code == 403, (path, r.text)
        assert r.json()["message"].startswith("Path is excluded from access")
    assert (api.tenant("bob/7") / "hello.ts").read_text() == "return 'hello from bob/7';\n"


def test_a_link_out_of_the_tenant_is_excluded(api: Server) -> None:
    os.symlink(api.tenant("bob/7"), api.tenant("alice/1") / "to-bob")
    r = api.client.get(f"{PREFIX}/scripts/read", params={"path": "to-bob/hello.ts", **ALICE})
    assert r.status_code == 403 and "Path is excluded from access" in r.json()["message"]
    assert write(api, "to-bob/evil.ts", "return 1;").status_code == 403
    assert not (api.tenant("bob/7") / "evil.ts").exists()
    os.unlink(api.tenant("alice/1") / "to-bob")


def test_read_returns_content_magic_comments_and_metadata(api: Server) -> None:
    write(api, "read-me.ts", "// @mode worker\n// @token sekrit\n// @description Hi\nreturn 1;\n")
    r = api.client.get(f"{PREFIX}/scripts/read", params={"path": "read-me.ts", **ALICE})
    body = r.json()
    assert body["content"].endswith("return 1;\n")
    assert body["magicComments"]["mode"] == "worker" and body["magicComments"]["description"] == "Hi"
    assert "sekrit" not in str(body["magicComments"])
    assert body["metadata"]["route"] == "/read-me" and body["metadata"]["served"] is True
    missing = api.client.get(f"{PREFIX}/scripts/read", params={"path": "nope.ts", **ALICE})
    assert missing.status_code == 404 and "nope.ts" in missing.json()["message"]
    assert api.client.get(f"{PREFIX}/scripts/read", params=ALICE).status_code == 422


def test_delete_needs_the_literal_confirm_true(api: Server) -> None:
    write(api, "doomed.ts", "return 'still here';\n")
    for confirm in (None, "yes", "TRUE", "1"):
        params = {"path": "doomed.ts", **ALICE} | ({"confirm": confirm} if confirm else {})
        r = api.client.delete(f"{PREFIX}/scripts/delete", params=params)
        assert r.status_code == 400
        assert r.json()["message"] == "confirm=true parameter required for safety"
    r = api.client.delete(f"{PREFIX}/scripts/delete",
                          params={"path": "doomed.ts", "confirm": "true", **ALICE})
    assert r.status_code == 200 and r.json() == {"success": True, "path": "doomed.ts",
                                                 "deleted": True}
    assert httpx.get(f"{api.base}/doomed", headers={"host": "alice-1.x"}).status_code == 404
    again = api.client.delete(f"{PREFIX}/scripts/delete",
                              params={"path": "doomed.ts", "confirm": "true", **ALICE})
    assert again.status_code == 404


def test_list_filters_on_path_and_magic_comments(api: Server) -> None:
    scripts = {
        "svc/a.ts": "// @mode worker\n// @label billing\n// @tags pay, stripe\nreturn 1;\n",
        "svc/b.ts": "// @enabled false\n// @tags other\nreturn 1;\n",
        "svc/deeper/c.js": "// @mode worker\n// @websocket\nreturn 1;\n",
        "svc/readme.md": "not a script",
    }
    for path, content in scripts.items():
        assert write(api, path, content).status_code == 200, path

    def listed(**params: object) -> list[str]:
        r = api.client.get(f"{PREFIX}/scripts/list", params={"dir": "svc", **ALICE, **params})
        assert r.status_code == 200, r.text
        assert r.json()["count"] == len(r.json()["scripts"])
        return [s["path"] for s in r.json()["scripts"]]

    assert listed() == ["svc/a.ts", "svc/b.ts", "svc/deeper/c.js"]
    assert listed(recursive="false") == ["svc/a.ts", "svc/b.ts"]
    assert listed(filter="*.js") == ["svc/deeper/c.js"]
    assert listed(filter="DEEP") == ["svc/deeper/c.js"]
    assert listed(mode="worker") == ["svc/a.ts", "svc/deeper/c.js"]
    assert listed(label="billing") == ["svc/a.ts"]
    assert listed(tags="stripe,other") == ["svc/a.ts", "svc/b.ts"]
    assert listed(enabled="false") == ["svc/b.ts"]
    assert listed(websocket="true") == ["svc/deeper/c.js"]
    full = api.client.get(f"{PREFIX}/scripts/list",
                          params={"dir": "svc", "metadata": "true", "include_comments": "true",
                                  "filter": "a.ts", **ALICE}).json()["scripts"][0]
    assert full["metadata"]["tags"] == ["pay", "stripe"] and full["route"] == "/svc/a"
    assert full["magicComments"]["label"] == "billing"
    bad = api.client.get(f"{PREFIX}/scripts/list", params={"mode": "sideways", **ALICE})
    assert bad.status_code == 422 and bad.json()["problems"][0]["where"] == "query.mode"
    assert api.client.get(f"{PREFIX}/scripts/list",
                          params={"dir": "../bob", **ALICE}).status_code == 403


def test_tree_nests_folders_to_max_depth(api: Server) -> None:
    write(api, "t/one/two/three.ts", "// @label deep\nreturn 1;\n")
    write(api, "t/top.ts", "return 1;\n")
    r = api.client.post(f"{PREFIX}/scripts/tree",
                        json={"baseDir": "t", "includeMetadata": True, **ALICE})
    tree = r.json()
    assert tree["baseDir"] == "t" and tree["files"] == 2 and tree["directories"] == 2
    one = next(n for n in tree["tree"] if n["name"] == "one")
    three = one["children"][0]["children"][0]
    assert three["type"] == "file" and three["route"] == "/t/one/two/three"
    assert three["metadata"]["label"] == "deep"
    shallow = api.client.post(f"{PREFIX}/scripts/tree",
                              json={"baseDir": "t", "maxDepth": 1, **ALICE}).json()
    assert sorted(n["name"] for n in shallow["tree"]) == ["one", "top.ts"]
    assert shallow["tree"][0]["children"] == []
    assert api.client.post(f"{PREFIX}/scripts/tree",
                           json={"maxDepth": -1, **ALICE}).status_code == 422


def test_move_renames_and_moves_the_route(api: Server) -> None:
    write(api, "old-name.ts", "return 'moved';\n")
    write(api, "taken.ts", "return 'taken';\n")
    r = api.client.post(f"{PREFIX}/scripts/move",
                        json={"from": "old-name.ts", "to": "taken.ts", **ALICE})
    assert r.status_code == 409 and "overwrite" in r.json()["message"]
    r = api.client.post(f"{PREFIX}/scripts/move",
                        json={"from": "old-name.ts", "to": "new/name.ts", **ALICE})
    assert r.status_code == 200 and r.json() == {"success": True, "from": "old-name.ts",
                                                 "to": "new/name.ts", "route": "/new/name"}
    host = {"host": "alice-1.x"}
    assert httpx.get(f"{api.base}/new/name", headers=host).text == "moved"
    assert httpx.get(f"{api.base}/old-name", headers=host).status_code == 404
    r = api.client.post(f"{PREFIX}/scripts/move",
                        json={"from": "new/name.ts", "to": "taken.ts", "overwrite": True, **ALICE})
    assert r.status_code == 200 and httpx.get(f"{api.base}/taken", headers=host).text == "moved"
    missing = api.client.post(f"{PREFIX}/scripts/move", json={"from": "gone.ts", "to": "x.ts",
                                                              **ALICE})
    assert missing.status_code == 404
    assert api.client.post(f"{PREFIX}/scripts/move", json={"to": "x.ts"}).status_code == 422


def test_writing_to_a_tenant_that_has_no_folder_yet_creates_it(api: Server) -> None:
    r = api.client.post(f"{PREFIX}/scripts/write?execId=3&subdomain=carol",
                        json={"path": "hi.ts", "content": "return 'carol';\n"})
    assert r.status_code == 200, r.text
    assert httpx.get(f"{api.base}/hi", headers={"host": "carol-3.example.com"}).text == "carol"
    unknown = api.client.get(f"{PREFIX}/scripts/read",
                             params={"path": "hi.ts", "execId": "4", "subdomain": "carol"})
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown_tenant"


def test_concurrent_writes_each_leave_a_whole_file(api: Server) -> None:
    contents = [f"return {'x' * n!r};\n" for n in range(1, 9)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda c: write(api, "race.ts", c), contents))
    assert all(r.status_code == 200 for r in answers)
    final = (api.tenant("alice/1") / "race.ts").read_text()
    assert final in contents
    assert httpx.get(f"{api.base}/race", headers={"host": "alice-1.x"}).text == \
        final.removeprefix("return '").removesuffix("';\n")


def test_missing_fields_and_bad_values_are_422_naming_them(api: Server) -> None:
    r = api.client.post(f"{PREFIX}/scripts/write", json={"content": "x"})
    assert r.status_code == 422 and r.json()["problems"][0]["where"] == "body.path"
    r = api.client.post(f"{PREFIX}/scripts/write",
                        json={"path": "x.ts", "content": "return 1", "createDirs": "maybe"})
    assert r.status_code == 422 and "body.createDirs" in r.json()["message"]
    r = api.client.post(f"{PREFIX}/scripts/write?execId=../1",
                        json={"path": "x.ts", "content": "return 1"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_tenant"
