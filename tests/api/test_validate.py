"""validate/*: each check over a real server, with line and column in the code sent."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import ALICE_TOKEN, PREFIX, Server

GREETING = """// @cors *
// @timeout 5000
// @description Greeting handler
module.exports = (req, res) => res.json({ hi: 1 });"""


def post(api: Server, check: str, body: dict[str, object]) -> httpx.Response:
    return api.client.post(f"{PREFIX}/validate/{check}", json=body)


def test_script_runs_every_check_into_its_slot(api: Server) -> None:
    r = post(api, "script", {"code": GREETING})
    body = r.json()
    assert r.status_code == 200 and body["valid"] is True and body["errors"] == []
    assert set(body["results"]) == {"syntax", "typescript", "dependencies", "magicComments"}
    assert body["results"]["magicComments"]["magicComments"]["timeout"] == 5000
    assert body["results"]["typescript"]["typeChecked"] is False


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


def test_typescript_says_it_does_not_type_check(api: Server) -> None:
    body = post(api, "typescript", {"code": "const n: number = 'text';\nreturn n;"}).json()
    assert body["valid"] is True and body["typeChecked"] is False
    assert "not checked" in body["warnings"][0]["message"]
    bad = post(api, "typescript", {"code": "interface X { a: }\nreturn 1;"}).json()
    assert bad["valid"] is False and bad["errors"][0]["line"] == 1


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
