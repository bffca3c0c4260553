"""user-openapi/* over real HTTP against `wexec serve`: the reference's curl steps verbatim, the
document checked by openapi-spec-validator, and every parameter and refusal."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_spec_validator import validate as validate_spec

from tests.support import refused, running_server, write_scripts

API = "/api/v1/exec/user-openapi"
ALICE = {"host": "alice-1.example.com"}

USER = """\
// @description One user by id
// @tags users, admin
// @mode worker
interface ResponseBody {
  id: string;
  name: string;
  roles: Array<'admin' | 'user'>;
  manager?: Manager | null;
}
type Manager = { id: string }
type Query = { full?: string; page: number }
return { id: metadata.parameters.id, name: 'x', roles: [] };
"""
USERS = """\
// @label Users
type RequestBody = { name: string; email?: string };
if (metadata.method === 'GET') return [];
if (req.method == "POST") return res.status(201).json(req.body);
return res.status(405).end();
"""
CRUD = """\
switch (metadata.method) {
  case 'PUT': return 1;
  case 'DELETE': return 2;
}
"""
SCRIPTS = {
    "api/users/[id].ts": USER,
    "api/users/[id].openapi.json": json.dumps(
        {"get": {"summary": "Get a user", "responses": {"404": {"description": "No such user"}}}}),
    "api/users/index.ts": USERS,
    "docs/[[...slug]].ts": "return metadata.parameters.slug ?? [];\n",
    "files/[...path].js": "module.exports = () => 'file';\n",
    "secret.ts": "// @token s3cret-value\nreturn 'hidden';\n",
    "crud.ts": CRUD,
    "off.ts": "// @enabled false\nreturn 1;\n",
    "broken.ts": "// @mode sideways\nreturn 1;\n",
    "op.ts": "return 1;\n",
    "op.openapi.json": json.dumps({"summary": "One operation for every method",
                                   "responses": {"204": {"description": "Nothing"}}}),
    "bad-json.ts": "return 1;\n",
    "bad-json.openapi.json": "{not json",
    "bad-shape.ts": "return 1;\n",
    "bad-shape.openapi.json": json.dumps({"get": {"responses": {"200": {"summary": "x"}}}}),
    "_private/helper.ts": "return 1;\n",
    "notes.md": "# not a script\n",
}
LISTED = {
    ("api/users/[id].ts", "/api/users/{id}", True),
    ("api/users/index.ts", "/api/users", False),
    ("docs/[[...slug]].ts", "/docs/{slug}", False),
    ("files/[...path].js", "/files/{path}", False),
    ("secret.ts", "/secret", False),
    ("crud.ts", "/crud", False),
    ("broken.ts", "/broken", False),
    ("op.ts", "/op", True),
    ("bad-json.ts", "/bad-json", True),
    ("bad-shape.ts", "/bad-shape", True),
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tenants")
    write_scripts(root / "default/1", SCRIPTS)
    write_scripts(root / "alice/1", {"alice.ts": "return 'alice';\n"})
    return root


@pytest.fixture(scope="module")
def base(root: Path) -> Iterator[str]:
    with running_server(["--tenants-root", str(root), "--data", str(root.parent / "data")]) as url:
        yield url


@pytest.fixture(scope="module")
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30) as c:
        yield c


def spec(client: httpx.Client, **params: str) -> dict[str, Any]:
    r = client.get(f"{API}/spec", params=params)
    assert r.status_code == 200, r.text
    document: dict[str, Any] = r.json()
    return document


# the reference's steps, verbatim apart from the host


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("jq") is None,
                    reason="the reference's steps use curl and jq")
def test_the_reference_curl_steps(base: str, tmp_path: Path) -> None:
    env = {"KIT": base, "PATH": "/usr/bin:/bin:/usr/local/bin"}
    listed = subprocess.run(
        """curl -sf "$KIT/api/v1/exec/user-openapi/list" | jq '.data.scripts[] | {path, routePath, hasSchema}'""",
        shell=True, env=env, capture_output=True, text=True, check=True).stdout
    entries = {(e["path"], e["routePath"], e["hasSchema"])
               for e in map(json.loads, _json_stream(listed))}
    assert entries == LISTED
    out = tmp_path / "user-scripts.openapi.json"
    subprocess.run(
        f"""curl -sf "$KIT/api/v1/exec/user-openapi/spec?format=json" > {out}""",
        shell=True, env=env, check=True)
    validate_spec(json.loads(out.read_text()))


def _json_stream(text: str) -> list[str]:
    """jq's output: JSON values one after another."""
    decoder, found, i = json.JSONDecoder(), [], 0
    while i < len(text.rstrip()):
        value, i = decoder.raw_decode(text, i)
        found.append(json.dumps(value))
        while i < len(text) and text[i].isspace():
            i += 1
    return found


# list


def test_list_filters_by_folder(client: httpx.Client) -> None:
    def listed(**params: str) -> set[str]:
        body = client.get(f"{API}/list", params=params).json()
        assert body["success"] is True and body["data"]["count"] == len(body["data"]["scripts"])
        return {s["path"] for s in body["data"]["scripts"]}

    assert listed() == {path for path, _, _ in LISTED}
    api = {"api/users/[id].ts", "api/users/index.ts"}
    assert listed(directory="api") == api
    assert listed(dir="api/users") == api
    assert listed(directory="docs", dir="api") == {"docs/[[...slug]].ts"}  # directory wins
    refused(client.get(f"{API}/list", params={"directory": "../default"}), 403, "forbidden",
            "Path is excluded from access")
    refused(client.get(f"{API}/list", params={"dir": "/etc"}), 403, "forbidden")
    refused(client.get(f"{API}/list", params={"dir": "nowhere"}), 404, "not_found", "nowhere")


def test_list_describes_each_script(client: httpx.Client) -> None:
    scripts = {s["path"]: s for s in client.get(f"{API}/list").json()["data"]["scripts"]}
    user = scripts["api/users/[id].ts"]
    assert user["description"] == "One user by id" and user["mode"] == "worker"
    assert user["schemaPath"] == "api/users/[id].openapi.json"
    assert scripts["docs/[[...slug]].ts"]["routePaths"] == ["/docs", "/docs/{slug}"]
    assert scripts["api/users/index.ts"]["methods"] == ["get", "post"]
    assert scripts["crud.ts"]["methods"] == ["put", "delete"]
    assert "line 1" in scripts["broken.ts"]["error"] and scripts["broken.ts"]["mode"] is None


def test_list_and_spec_belong_to_their_tenant(client: httpx.Client) -> None:
    alice = client.get(f"{API}/list", headers=ALICE).json()["data"]["scripts"]
    assert [s["path"] for s in alice] == ["alice.ts"]
    by_query = client.get(f"{API}/spec", params={"subdomain": "alice", "execId": "1"}).json()
    assert list(by_query["paths"]) == ["/alice"]
    refused(client.get(f"{API}/list", params={"execId": "9"}), 404, "unknown_tenant")


# spec


def test_the_spec_is_valid_openapi_with_every_shape_it_can_know(client: httpx.Client) -> None:
    document = spec(client)
    validate_spec(document)  # raises on any problem
    assert document["openapi"] == "3.0.3"
    assert document["servers"] == [{"url": str(client.base_url).rstrip("/")}]
    assert set(document["paths"]) == {
        "/api/users/{id}", "/api/users", "/docs", "/docs/{slug}", "/files/{path}", "/secret",
        "/crud", "/broken", "/op", "/bad-shape", "/bad-json"}

    user = document["paths"]["/api/users/{id}"]["get"]
    assert user["summary"] == "Get a user"  # the companion file wins
    assert user["description"] == "One user by id" and user["tags"] == ["users", "admin"]
    assert user["responses"]["404"] == {"description": "No such user"}
    params = {(p["name"], p["in"], p["required"]) for p in user["parameters"]}
    assert params == {("id", "path", True), ("full", "query", False), ("page", "query", True)}
    body = user["responses"]["200"]["content"]["application/json"]["schema"]
    assert body["required"] == ["id", "name", "roles"]
    assert body["properties"]["roles"] == {"type": "array",
                                           "items": {"type": "string", "enum": ["admin", "user"]}}
    assert body["properties"]["manager"]["nullable"] is True
    assert document["paths"]["/api/users/{id}"]["post"]["summary"] == "api/users/[id].ts"

    users = document["paths"]["/api/users"]
    assert set(users) == {"get", "post"} and users["get"]["summary"] == "Users"
    assert "requestBody" not in users["get"]
    assert users["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "type": "object", "properties": {"name": {"type": "string"},
                                         "email": {"type": "string"}}, "required": ["name"]}

    assert set(document["paths"]["/crud"]) == {"put", "delete"}
    assert "parameters" not in document["paths"]["/docs"]["get"]
    assert document["paths"]["/docs/{slug}"]["get"]["parameters"][0]["name"] == "slug"
    secret = document["paths"]["/secret"]["get"]
    assert secret["security"] == [{"token": []}] and "401" in secret["responses"]
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    assert "s3cret-value" not in json.dumps(document)
    assert "x-wexec-error" in document["paths"]["/broken"]["get"]
    op = document["paths"]["/op"]
    assert op["get"]["summary"] == op["post"]["summary"] == "One operation for every method"
    assert "204" in op["post"]["responses"]


def test_the_spec_as_yaml_and_for_one_folder(client: httpx.Client) -> None:
    r = client.get(f"{API}/spec", params={"format": "yaml"})
    assert r.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(r.text) == spec(client)
    assert set(spec(client, dir="docs")["paths"]) == {"/docs", "/docs/{slug}"}
    assert set(spec(client, directory="docs", dir="files")["paths"]) == {"/files/{path}"}
    refused(client.get(f"{API}/spec", params={"format": "xml"}), 422, "invalid_request", "format")
    refused(client.get(f"{API}/spec", params={"dir": "a/../../b"}), 403, "forbidden")


def test_a_broken_companion_file_is_left_out_and_named(client: httpx.Client) -> None:
    document = spec(client)
    validate_spec(document)
    for path, why in (("/bad-json", "not JSON"), ("/bad-shape", "200")):
        for operation in document["paths"][path].values():
            assert "is not applied" in operation["x-wexec-error"], operation
            assert why in operation["x-wexec-error"], operation


# schema


def test_schema_serves_a_companion_file(client: httpx.Client) -> None:
    expected = json.loads(SCRIPTS["api/users/[id].openapi.json"])
    assert client.get(f"{API}/schema", params={"file": "api/users/[id].ts"}).json() == expected
    assert client.get(f"{API}/schema", params={"path": "api/users/[id].ts"}).json() == expected
    assert client.get(f"{API}/schema",
                      params={"file": "api/users/[id].openapi.json"}).json() == expected


def test_schema_refusals(client: httpx.Client) -> None:
    refused(client.get(f"{API}/schema"), 400, "missing_file", "file=")
    refused(client.get(f"{API}/schema", params={"file": "crud.ts"}), 404, "no_schema",
            "crud.openapi.json")
    refused(client.get(f"{API}/schema", params={"file": "nope.ts"}), 404, "not_found", "nope.ts")
    refused(client.get(f"{API}/schema", params={"file": "_private/helper.ts"}), 404, "not_found")
    refused(client.get(f"{API}/schema", params={"file": "../alice/1/alice.ts"}), 403,
            "forbidden")
    refused(client.get(f"{API}/schema", params={"file": "bad-json.ts"}), 400, "invalid_schema",
            "not JSON")


# validate


def test_validate_a_companion_file(client: httpx.Client) -> None:
    good = client.post(f"{API}/validate", json={"file": "api/users/[id].ts"}).json()
    assert good == {"valid": True, "file": "api/users/[id].ts",
                    "schemaPath": "api/users/[id].openapi.json", "errors": []}
    assert client.post(f"{API}/validate", json={"path": "op.openapi.json"}).json()["valid"]
    bad = client.post(f"{API}/validate", json={"file": "bad-shape.ts"}).json()
    assert bad["valid"] is False
    assert any("paths./bad-shape.get.responses.200" in e for e in bad["errors"]), bad


def test_validate_an_inline_document(client: httpx.Client) -> None:
    undeclared = {"get": {"parameters": [{"name": "other", "in": "path", "required": True,
                                          "schema": {"type": "string"}}]}}
    r = client.post(f"{API}/validate", json={"file": "crud.ts", "schema": undeclared}).json()
    assert r["valid"] is False and any("other" in e for e in r["errors"]), r
    ok = {"put": {"responses": {"409": {"description": "Conflict"}}}}
    assert client.post(f"{API}/validate", json={"file": "crud.ts", "schema": ok}).json()["valid"]


def test_validate_refusals(client: httpx.Client) -> None:
    refused(client.post(f"{API}/validate", json={}), 400, "missing_file")
    refused(client.post(f"{API}/validate", json={"file": "crud.ts"}), 404, "no_schema")
    refused(client.post(f"{API}/validate", json={"file": "ghost.ts"}), 404, "not_found")
    refused(client.post(f"{API}/validate", json={"file": "/etc/passwd"}), 403, "forbidden")
    refused(client.post(f"{API}/validate", json={"file": "bad-json.ts"}), 400, "invalid_schema")
    refused(client.post(f"{API}/validate", json={"file": "op.ts", "schema": [1]}), 422,
            "invalid_request", "schema")


# generate


def test_generate_writes_the_document(client: httpx.Client, root: Path) -> None:
    r = client.post(f"{API}/generate", json={}).json()
    assert r["success"] is True and r["valid"] is True and r["problems"] == []
    assert r["path"] == "_wexec/openapi.json" and r["paths"] == len(r["spec"]["paths"]) == 11
    assert json.loads((root / "default/1/_wexec/openapi.json").read_text()) == r["spec"] \
        == spec(client)
    titled = client.post(f"{API}/generate", json={
        "dir": "api", "output": "openapi/api.json", "title": "Users API"}).json()
    on_disk = json.loads((root / "default/1/openapi/api.json").read_text())
    assert on_disk["info"]["title"] == "Users API" and set(on_disk["paths"]) == {
        "/api/users/{id}", "/api/users"} and titled["paths"] == 2
    refused(client.post(f"{API}/generate", json={"output": "../../x.json"}), 403,
            "forbidden")
    refused(client.post(f"{API}/generate", json={"directory": "/abs"}), 403, "forbidden")


# merge


def test_merge_layers_a_hand_written_document(client: httpx.Client, root: Path) -> None:
    layer = {"info": {"title": "My API", "description": None},
             "servers": [{"url": "https://api.example.com"}],
             "paths": {"/secret": {"get": {"summary": "Hidden"}}}}
    try:
        merged = client.post(f"{API}/merge", json={"spec": layer}).json()
        assert merged["saved"] is True and merged["layerPath"] == "_wexec/openapi.layer.json"
        document = merged["spec"]
        validate_spec(document)
        assert document["info"] == {"title": "My API", "version": "1.0.0"}  # null removed
        assert document["servers"] == [{"url": "https://api.example.com"}]
        assert document["paths"]["/secret"]["get"]["summary"] == "Hidden"
        assert document["paths"]["/secret"]["get"]["security"] == [{"token": []}]  # kept
        assert spec(client) == document  # kept, and applied to the served document
        generated = client.post(f"{API}/generate", json={}).json()["spec"]
        assert generated["info"]["title"] == "My API"

        preview = client.post(f"{API}/merge", json={
            "spec": {"info": {"title": "Not kept"}}, "save": False}).json()
        assert preview["saved"] is False and preview["spec"]["info"]["title"] == "Not kept"
        assert spec(client)["info"]["title"] == "My API"

        invalid = client.post(f"{API}/merge", json={"spec": {"paths": {"/op": {"get": {
            "responses": {"200": {"summary": "no description"}}}}}}})
        assert refused(invalid, 400, "invalid_spec", "not kept")["problems"]
        assert spec(client)["info"]["title"] == "My API"
        refused(client.post(f"{API}/merge", json={"spec": {"openapi": "2.0"}}), 400,
                "invalid_spec", "3.0.x or 3.1.x")
        refused(client.post(f"{API}/merge", json={}), 422, "invalid_request", "spec")
    finally:
        (root / "default/1/_wexec/openapi.layer.json").unlink(missing_ok=True)
