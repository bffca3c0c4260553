"""validate/*: each check over a real server, with line and column in the code sent."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import ALICE_TOKEN, PREFIX, Server
from tests.support import running_server

GREETING = """// @cors *
// @timeout 5000
// @description Greeting handler
module.exports = (req, res) => res.json({ hi: 1 });"""


needs_node = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="node and npm are needed for TypeScript's type check")


def post(api: Server, check: str, body: dict[str, object]) -> httpx.Response:
    return api.client.post(f"{PREFIX}/validate/{check}", json=body)


@needs_node
def test_script_runs_every_check_into_its_slot(api: Server) -> None:
    r = post(api, "script", {"code": GREETING})
    body = r.json()
    assert r.status_code == 200 and body["valid"] is True and body["errors"] == []
    assert set(body["results"]) == {"syntax", "typescript", "dependencies", "magicComments"}
    assert body["results"]["magicComments"]["magicComments"]["timeout"] == 5000
    assert body["results"]["typescript"]["typeChecked"] is True


def test_script_reports_which_checker_rejected_it(api: Server) -> None:
    code = "// @cors sideways\nconst x: number = ;\nconst _ = require('lodash');\n"
    body = post(api, "script", {"code": code}).json()
    results = body["results"]
    assert body["valid"] is False
    assert results["syntax"]["errors"] == [
        {"message": 'Unexpected ";"', "line": 2, "column": 19}]
    assert results["typescript"]["valid"] is False
    assert results["magicComments"]["errors"][0]["line"] == 1
    assert "sideways" not in results["magicComments"]["errors"][0]["message"]  # never quoted
    assert results["dependencies"]["errors"][0]["line"] == 3
    assert body["errors"][0].startswith("syntax: line 2:19: ")


def test_syntax_uses_the_path_to_pick_the_loader(api: Server) -> None:
    typed = "const n: number = 1;\nreturn n;\n"
    assert post(api, "syntax", {"code": typed}).json()["valid"] is True  # script.ts by default
    js = post(api, "syntax", {"code": typed, "path": "x.js"}).json()
    assert js["valid"] is False and js["errors"][0]["line"] == 1
    r = post(api, "syntax", {"code": typed, "path": "x.py"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_path"


MISTYPED = """// @timeout 5000
const id: number = metadata.path;
if (!id) return res.status('bad').json({ error: 'no id' });
return res.json(1, 2, 3);
"""

WELL_TYPED = """const name: string = String(metadata.query.name ?? 'world');
const body: unknown = req.body;
const hits: number = (shared.hits ?? 0) + 1;
shared.hits = hits;
const upstream = await fetch('https://example.com/x', { method: 'POST', body: JSON.stringify(body) });
const data: unknown = await upstream.json();
const text: string = await fs.read('notes.txt');
await fs.write('out.txt', `${name} ${text}`);
if (!upstream.ok) return res.status(502).json({ error: 'upstream failed' });
return res.json({ hello: name, hits, data });
"""


@needs_node
def test_typescript_reports_type_errors_with_line_column_and_code(api: Server) -> None:
    body = post(api, "typescript", {"code": MISTYPED}).json()
    assert body["typeChecked"] is True and body["valid"] is False
    assert [(e["line"], e["column"], e["code"]) for e in body["errors"]] == [
        (2, 7, "TS2322"), (3, 28, "TS2345"), (4, 20, "TS2554")]
    assert body["errors"][0]["message"] == "Type 'string' is not assignable to type 'number'."
    assert body["errors"][2]["message"] == "Expected 1 arguments, but got 3."


@needs_node
def test_typescript_passes_a_script_using_the_globals(api: Server) -> None:
    body = post(api, "typescript", {"code": WELL_TYPED}).json()  # top-level return included
    assert body == {"valid": True, "errors": [], "warnings": [], "typeChecked": True}


def test_typescript_reports_a_parse_error_once_without_a_type_check(api: Server) -> None:
    bad = post(api, "typescript", {"code": "interface X { a: }\nreturn 1;"}).json()
    assert bad["valid"] is False and bad["typeChecked"] is False
    assert [e["line"] for e in bad["errors"]] == [1]


def test_typescript_has_nothing_to_check_in_a_js_file(api: Server) -> None:
    body = post(api, "typescript", {"code": "return res.json(1, 2, 3);", "path": "a.js"}).json()
    assert body["valid"] is True and body["typeChecked"] is False
    assert "a.js is JavaScript" in body["warnings"][0]["message"]
    assert post(api, "script", {"code": "return 1;", "path": "a.js"}).json()["valid"] is True


@needs_node
def test_script_counts_a_type_error_as_invalid(api: Server) -> None:
    body = post(api, "script", {"code": MISTYPED}).json()
    assert body["valid"] is False and body["results"]["syntax"]["valid"] is True
    assert body["errors"][0] == ("typescript: line 2:7: TS2322 Type 'string' is not "
                                 "assignable to type 'number'.")


@needs_node
def test_write_refuses_a_type_error_only_when_asked(api: Server) -> None:
    r = api.client.post(f"{PREFIX}/scripts/write",
                        json={"path": "typed/loose.ts", "content": MISTYPED})
    assert r.status_code == 200, r.text
    typescript = r.json()["validation"]["results"]["typescript"]
    assert typescript["typeChecked"] is False and "typeCheck=true" in \
        typescript["warnings"][0]["message"]
    r = api.client.post(f"{PREFIX}/scripts/write", json={
        "path": "typed/strict.ts", "content": MISTYPED, "typeCheck": True})
    assert r.status_code == 400 and r.json()["error"] == "validation_failed"
    assert "line 2:7: TS2322" in r.json()["message"]
    assert not (api.tenant("default/1") / "typed" / "strict.ts").exists()
    r = api.client.post(f"{PREFIX}/scripts/write", json={
        "path": "typed/strict.ts", "content": WELL_TYPED, "typeCheck": True})
    assert r.status_code == 200
    assert r.json()["validation"]["results"]["typescript"]["typeChecked"] is True


def test_without_node_the_type_check_says_why(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    with running_server(["--scripts", str(tmp_path / "scripts")],
                        env={"PATH": str(tmp_path / "bin")}) as base:
        r = httpx.post(f"{base}{PREFIX}/validate/typescript", json={"code": MISTYPED})
        body = r.json()
    assert r.status_code == 200 and body["valid"] is True and body["typeChecked"] is False
    warning = body["warnings"][0]["message"]
    assert "node is not on the server's PATH" in warning and "install Node.js" in warning


def test_dependencies_lists_built_in_and_missing_modules(api: Server) -> None:
    code = ("import { createHash } from 'crypto';\nimport type { T } from 'types';\n"
            "const b = require('node:buffer');\nconst _ = require('lodash');\n"
            "const m = await import('./local.js');\n")
    body = post(api, "dependencies", {"code": code}).json()
    assert body["builtin"] == ["crypto", "node:buffer"]
    assert body["missing"] == ["./local.js", "lodash"] and body["valid"] is False
    assert [(e["line"], e["column"]) for e in body["errors"]] == [(4, 19), (5, 24)]
    assert post(api, "dependencies", {"code": "return 1;"}).json()["valid"] is True


def test_magic_comments_parses_with_the_server_parser(api: Server) -> None:
    body = post(api, "magic-comments", {"code": GREETING}).json()
    assert body["valid"] and body["magicComments"]["cors"] == "*"
    bad = post(api, "magic-comments",
               {"code": "// @mode worker\n// @tiemout 5\n// @token a b\nreturn 1;"}).json()
    assert not bad["valid"] and bad["magicComments"] is None
    assert [e["line"] for e in bad["errors"]] == [2, 3]
    assert "did you mean @timeout" in bad["errors"][0]["message"]
    sockets = "// @mode worker\n// @websocket\n"
    warned = post(api, "magic-comments", {"code": sockets + "ws.message = (s, d) => s.send(d);\nreturn 1;"}).json()
    assert warned["valid"] and "Export the HTTP handler" in warned["warnings"][0]["message"]
    exported = sockets + "ws.message = (s, d) => s.send(d);\nmodule.exports = () => 1;"
    assert post(api, "magic-comments", {"code": exported}).json()["warnings"] == []


def test_return_type_checks_a_value_against_a_typescript_type(api: Server) -> None:
    definition = "interface User { id: number; name: string; role?: 'admin' | 'user' }\n" \
                 "interface Page { users: User[]; total: number }"
    ok = post(api, "return-type", {"typeDefinition": definition,
                                   "value": {"users": [{"id": 1, "name": "a"}], "total": 1}})
    assert ok.json() == {"valid": True, "type": "Page", "errors": []}
    bad = post(api, "return-type", {"typeDefinition": definition, "typeName": "User",
                                    "value": {"id": "1", "role": "root"}}).json()
    assert bad["valid"] is False and [e["path"] for e in bad["errors"]] == ["$.id", "$.name",
                                                                            "$.role"]
    r = post(api, "return-type", {"typeDefinition": "{ a: Missing }", "value": {}})
    assert r.status_code == 400 and r.json()["error"] == "invalid_type"
    assert "unknown type Missing" in r.json()["message"]


@pytest.mark.parametrize(("check", "body", "where"), [
    ("script", {}, "body.code"), ("syntax", {"code": 1}, "body.code"),
    ("return-type", {"value": 1}, "body.typeDefinition"),
    ("return-type", {"typeDefinition": "string"}, "body.value"),
])
def test_missing_or_bad_fields_are_422(api: Server, check: str, body: dict[str, object],
                                       where: str) -> None:
    r = post(api, check, body)
    assert r.status_code == 422 and where in [p["where"] for p in r.json()["problems"]]


def test_a_tenant_token_validates_for_its_tenant_only(api: Server) -> None:
    with httpx.Client(base_url=api.base,
                      headers={"authorization": f"Bearer {ALICE_TOKEN}"}) as alice:
        assert alice.post(f"{PREFIX}/validate/syntax", json={"code": "return 1"}).status_code == 200
        other = alice.post(f"{PREFIX}/validate/syntax",
                           json={"code": "return 1", "execId": "7", "subdomain": "bob"})
        assert other.status_code == 403
