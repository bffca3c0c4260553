"""sdk/* over real HTTP: an OpenAPI document imported as a client module that scripts load,
calling a real local server (opened to scripts with WEXEC_FETCH_ALLOW_HOSTS)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from tests.api.conftest import ADMIN_TOKEN, PREFIX
from tests.support import free_port, running_server, write_scripts

S = f"{PREFIX}/sdk"
DOC_TOKEN = "Bearer doc-secret"


def petstore(base: str) -> dict[str, object]:
    pet = {"type": "object", "required": ["id", "name"],
           "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                          "tag": {"type": "string", "nullable": True}}}
    return {
        "openapi": "3.0.3", "info": {"title": "Pet Store", "version": "1.2.0"},
        "servers": [{"url": base}],
        "components": {"schemas": {"Pet": pet, "NewPet": {
            "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}},
            "parameters": {"Limit": {"name": "limit", "in": "query",
                                     "schema": {"type": "integer"}}}},
        "paths": {
            "/pets": {
                "get": {"operationId": "listPets", "summary": "All pets",
                        "parameters": [{"$ref": "#/components/parameters/Limit"}],
                        "responses": {"200": {"description": "ok", "content": {
                            "application/json": {"schema": {
                                "type": "array", "items": {"$ref": "#/components/schemas/Pet"}}}}}}},
                "post": {"operationId": "create-pet",
                         "requestBody": {"required": True, "content": {"application/json": {
                             "schema": {"$ref": "#/components/schemas/NewPet"}}}},
                         "responses": {"201": {"description": "made", "content": {
                             "application/json": {"schema": {
                                 "$ref": "#/components/schemas/Pet"}}}}}}},
            "/pets/{petId}": {"get": {
                "parameters": [{"name": "petId", "in": "path", "required": True,
                                "schema": {"type": "integer"}},
                               {"name": "x-trace", "in": "header", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "ok", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Pet"}}}},
                              "404": {"description": "none"}}}},
        },
    }


class Upstream(BaseHTTPRequestHandler):
    """The API the document describes, and the document itself behind a token."""

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path == "/openapi.json":
            if self.headers.get("authorization") != DOC_TOKEN:
                return self._send(401, {"error": "token"})
            return self._send(200, petstore(base))
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("location", "/openapi.json")
            self.send_header("content-length", "0")
            self.end_headers()
            return None
        if self.path.startswith("/pets?") or self.path == "/pets":
            limit = int(self.path.partition("limit=")[2] or 3)
            return self._send(200, [{"id": i, "name": f"pet{i}",
                                     "seen": self.headers.get("x-sdk")} for i in range(limit)])
        if self.path.startswith("/pets/"):
            pet_id = int(self.path.rsplit("/", 1)[1])
            if pet_id == 404:
                return self._send(404, {"error": "no such pet"})
            return self._send(200, {"id": pet_id, "name": "rex",
                                    "trace": self.headers.get("x-trace")})
        return self._send(404, {"error": self.path})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self._send(201, {"id": 99, "name": body["name"],
                         "type": self.headers.get("content-type")})

    def log_message(self, *args: object) -> None:
        return None


@dataclass
class Setup:
    base: str
    upstream: str
    root: Path
    client: httpx.Client

    def run(self, route: str) -> httpx.Response:
        return httpx.get(f"{self.base}{route}", headers={"host": "alice-1.localhost"},
                         timeout=30)

    def write(self, path: str, content: str) -> httpx.Response:
        return self.client.post(f"{PREFIX}/scripts/write", params=ALICE, json={
            "path": path, "content": content})


ALICE = {"subdomain": "alice", "execId": "1"}


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    upstream = f"http://127.0.0.1:{server.server_address[1]}"
    root = tmp_path_factory.mktemp("sdk-tenants")
    write_scripts(root / "alice/1", {"hello.ts": "return 'hi';\n",
                                     "specs/petstore.yaml": yaml.safe_dump(petstore(upstream))})
    write_scripts(root / "bob/7", {"hello.ts": "return 'hi';\n"})
    env = {"WEXEC_API_TOKEN": ADMIN_TOKEN,
           "WEXEC_FETCH_ALLOW_HOSTS": f"127.0.0.1:{server.server_address[1]}"}
    try:
        with running_server(["--tenants-root", str(root)], env=env) as base, httpx.Client(
                base_url=base, headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
                timeout=60) as client:
            yield Setup(base, upstream, root, client)
    finally:
        server.shutdown()


def imported(setup: Setup, **body: object) -> httpx.Response:
    return setup.client.post(f"{S}/import", params={"subdomain": "alice"},
                             json={"execId": "1", **body})


def test_an_sdk_imported_from_a_local_file_calls_a_local_server_from_a_script(
        sdk: Setup) -> None:
    made = imported(sdk, source_url="specs/petstore.yaml", id="petstore")
    assert made.status_code == 200, made.text
    got = made.json()
    assert got["module"] == "sdk/petstore" and got["created"] is True
    assert [o["name"] for o in got["operations"]] == ["listPets", "createPet", "getPetsByPetId"]
    assert sorted(got["types"]) == ["NewPet", "Pet"] and got["baseUrl"] == sdk.upstream
    script = ("const api = require('sdk/petstore');\n"
              "const pets = await api.listPets({ limit: 2 });\n"
              "const one = await api.getPetsByPetId({ petId: 7, 'x-trace': 't1' });\n"
              "const made = await api.createPet({ body: { name: 'tom' } });\n"
              "let missing;\n"
              "try { await api.getPetsByPetId({ petId: 404 }); } catch (e) {\n"
              "  missing = [e.name, e.status, e.body]; }\n"
              "return { pets, one, made, missing };\n")
    assert sdk.write("pets.js", script).status_code == 200
    assert sdk.run("/pets").json() == {
        "pets": [{"id": 0, "name": "pet0", "seen": None}, {"id": 1, "name": "pet1", "seen": None}],
        "one": {"id": 7, "name": "rex", "trace": "t1"},
        "made": {"id": 99, "name": "tom", "type": "application/json"},
        "missing": ["ApiError", 404, {"error": "no such pet"}],
    }


def test_typescript_scripts_import_it_with_its_types(sdk: Setup) -> None:
    imported(sdk, source_url="specs/petstore.yaml", id="typed", force=True)
    script = ("import api, { type Pet, getPetsByPetId } from 'sdk/typed';\n"
              "const pet: Pet = await getPetsByPetId({ petId: 3 });\n"
              "const all: Pet[] = await api.listPets();\n"
              "return { name: pet.name, count: all.length };\n")
    written = sdk.write("typed.ts", script)
    assert written.status_code == 200, written.text
    assert sdk.run("/typed").json() == {"name": "rex", "count": 3}
    code = sdk.client.get(f"{S}/typed", params=ALICE).json()["code"]
    assert "export interface Pet {" in code and '"tag"?: string | null;' in code


def test_a_url_source_is_fetched_with_source_auth_and_its_redirects(sdk: Setup) -> None:
    denied = imported(sdk, source_url=f"{sdk.upstream}/openapi.json", id="remote")
    assert denied.status_code == 400 and "401" in denied.json()["message"]
    made = imported(sdk, source_url=f"{sdk.upstream}/moved", id="remote",
                    source_auth=DOC_TOKEN, middleware="(r) => { r.headers.set('x-sdk', 'mw'); }",
                    magic_comments=f"// @allow-hosts 127.0.0.1:{sdk.upstream.rsplit(':', 1)[1]}")
    assert made.status_code == 200, made.text
    assert made.json()["middleware"] is True and "@allow-hosts" in made.json()["usage"]
    assert "doc-secret" not in made.text
    assert "doc-secret" not in (sdk.root / "alice/1/.sdk/remote.json").read_text()
    sdk.write("remote.js", "const api = require('sdk/remote');\n"
              "return (await api.listPets({ limit: 1 }))[0];\n")
    assert sdk.run("/remote").json() == {"id": 0, "name": "pet0", "seen": "mw"}


def test_calls_obey_the_calling_scripts_fetch_rules(sdk: Setup) -> None:
    imported(sdk, source_url="specs/petstore.yaml", id="ruled", force=True)
    sdk.write("ruled.js", "// @allow-hosts api.example.com\n"
              "const api = require('sdk/ruled');\n"
              "try { await api.listPets(); return 'reached'; } catch (e) { return e.message; }\n")
    assert "refused" in sdk.run("/ruled").text


@pytest.mark.parametrize("url, words", [
    ("http://127.0.0.1:{port}/openapi.json", "WEXEC_FETCH_ALLOW_HOSTS"),
    ("http://169.254.169.254/latest/meta-data", "refused"),
    ("http://[::ffff:127.0.0.1]:{port}/x", "refused"),
    ("file:///etc/passwd", "only http: and https:"),
])
def test_a_source_url_the_ssrf_guard_refuses_is_not_fetched(sdk: Setup, url: str,
                                                            words: str) -> None:
    r = imported(sdk, source_url=url.format(port=free_port()), id="nope")
    assert r.status_code == 400 and r.json()["error"] == "source_refused", r.text
    assert words in r.json()["message"]


@pytest.mark.parametrize("body, status, error", [
    ({"source_url": "../../bob/7/hello.ts"}, 403, "forbidden"),
    ({"source_url": "specs/none.yaml"}, 404, "not_found"),
    ({"source_url": "hello.ts"}, 400, "invalid_spec"),
    ({"source_url": "specs/petstore.yaml", "id": "Bad Id"}, 400, "invalid_id"),
    ({"source_url": "specs/petstore.yaml", "id": "list"}, 400, "invalid_id"),
    ({"source_url": "specs/petstore.yaml", "magic_comments": "// @timeout soon"}, 400,
     "invalid_magic_comments"),
])
def test_import_errors_say_what_to_fix(sdk: Setup, body: dict[str, object], status: int,
                                       error: str) -> None:
    r = imported(sdk, **body)
    assert r.status_code == status, r.text
    assert r.json()["error"] == error


def test_import_needs_an_exec_id_and_source(sdk: Setup) -> None:
    r = sdk.client.post(f"{S}/import", json={"source_url": "specs/petstore.yaml"})
    assert r.status_code == 422


def test_list_get_conflict_and_delete(sdk: Setup) -> None:
    assert imported(sdk, source_url="specs/petstore.yaml").json()["id"] == "pet-store"
    again = imported(sdk, source_url="specs/petstore.yaml")
    assert again.status_code == 409 and "force" in again.json()["message"]
    assert imported(sdk, source_url="specs/petstore.yaml", force=True).json()["created"] is False
    listed = sdk.client.get(f"{S}/list", params=ALICE).json()
    assert "pet-store" in [s["id"] for s in listed["sdks"]] and listed["count"] >= 1
    row = next(s for s in listed["sdks"] if s["id"] == "pet-store")
    assert row == {"id": "pet-store", "module": "sdk/pet-store", "title": "Pet Store",
                   "version": "1.2.0", "source": "specs/petstore.yaml",
                   "importedAt": row["importedAt"], "operations": 3}
    assert sdk.client.get(f"{S}/list", params={"subdomain": "bob", "execId": "7"}).json() == {
        "sdks": [], "count": 0}
    detail = sdk.client.get(f"{S}/pet-store", params=ALICE).json()
    assert detail["title"] == "Pet Store" and "createClient" in detail["code"]
    sdk.write("gone.js", "try { require('sdk/pet-store'); return 'loaded'; }\n"
              "catch (e) { return e.message; }\n")
    assert sdk.run("/gone").text == "loaded"
    deleted = sdk.client.delete(f"{S}/pet-store", params=ALICE)
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert "Cannot find module" in sdk.run("/gone").text
    assert sdk.client.get(f"{S}/pet-store", params=ALICE).status_code == 404
    assert sdk.client.delete(f"{S}/pet-store", params=ALICE).status_code == 404
    assert sdk.client.get(f"{S}/Bad!", params=ALICE).status_code == 400
