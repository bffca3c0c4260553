"""dependencies/* and package/* over real HTTP, with real packages from the npm registry.

The tests that install are skipped, saying why, when the registry cannot be reached; the rest
(checks, package.json editing, refusals, the sandbox's missing built-ins) run regardless, on
packages written into node_modules by hand.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from functools import cache
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import ADMIN_TOKEN, ALICE_TOKEN, PREFIX, Server
from tests.support import running_server, write_scripts

D = f"{PREFIX}/dependencies"
P = f"{PREFIX}/package"


@cache
def registry_problem() -> str | None:
    """Why packages cannot be installed here, or None."""
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed"
    try:
        done = subprocess.run([npm, "view", "lodash", "version"], capture_output=True,
                              text=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        return "the npm registry did not answer within 60 s"
    return None if done.returncode == 0 else f"the npm registry is unreachable: {done.stderr[-300:]}"


def needs_registry() -> None:
    problem = registry_problem()
    if problem is not None:
        pytest.skip(f"installs need the npm registry: {problem}")


def fake_package(root: Path, name: str, version: str, code: str) -> None:
    """A package as npm would leave it, written by hand (no registry)."""
    folder = root / "node_modules" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text(json.dumps({"name": name, "version": version,
                                                     "main": "index.js"}))
    (folder / "index.js").write_text(code)


def write(api: Server, tenant: str, path: str, content: str, **extra: object) -> httpx.Response:
    sub, _, exec_id = tenant.partition("/")
    return api.client.post(f"{PREFIX}/scripts/write", json={
        "path": path, "content": content, "subdomain": sub, "execId": exec_id, **extra})


def run(api: Server, tenant: str, route: str) -> httpx.Response:
    sub, _, exec_id = tenant.partition("/")
    host = "localhost" if tenant == "default/1" else f"{sub}-{exec_id}.localhost"
    return httpx.get(f"{api.base}{route}", headers={"host": host}, timeout=30)


# -- no registry needed -------------------------------------------------------------------------

def test_check_reports_missing_installed_and_builtin_modules(api: Server) -> None:
    fake_package(api.tenant("bob/7"), "tiny", "1.0.0", "module.exports = 42;")
    code = "const a = require('tiny');\nconst c = require('crypto');\nconst l = require('lodash');"
    got = api.client.post(f"{D}/check", params={"subdomain": "bob", "execId": "7"},
                          json={"code": code, "modules": "node:util, dayjs"}).json()
    assert got["installed"] == ["tiny"]
    assert got["missing"] == ["lodash", "dayjs"]
    assert got["builtin"] == ["crypto", "node:util"]
    assert {m["name"]: m.get("version") for m in got["modules"]}["tiny"] == "1.0.0"
    assert got["validation"]["valid"] is False
    assert "lodash" in got["validation"]["errors"][0]["message"]


def test_check_needs_code_or_modules(api: Server) -> None:
    r = api.client.post(f"{D}/check", json={})
    assert r.status_code == 400 and r.json()["error"] == "missing_input"


def test_an_installed_package_passes_validation_and_runs_bundled(api: Server) -> None:
    root = api.tenant("bob/7")
    fake_package(root, "greeter", "2.0.0", "module.exports = (n) => 'hi ' + n;")
    code = "const greet = require('greeter');\nreturn greet('bob');\n"
    checked = api.client.post(f"{PREFIX}/validate/dependencies",
                              params={"subdomain": "bob", "execId": "7"}, json={"code": code})
    assert checked.json()["valid"] is True and checked.json()["installed"] == ["greeter"]
    assert write(api, "bob/7", "greet.js", code).status_code == 200
    assert run(api, "bob/7", "/greet").text == "hi bob"


def test_a_package_needing_builtins_the_sandbox_lacks_fails_validation_naming_them(
        api: Server) -> None:
    root = api.tenant("bob/7")
    fake_package(root, "uses-fs", "1.0.0",
                 "const fs = require('fs'); const p = require('node:path');\n"
                 "module.exports = () => fs.readFileSync(p.join('a', 'b'));")
    code = "const u = require('uses-fs');\nreturn u();\n"
    got = api.client.post(f"{PREFIX}/validate/dependencies",
                          params={"subdomain": "bob", "execId": "7"}, json={"code": code}).json()
    assert got["valid"] is False
    message = got["errors"][0]["message"]
    assert "uses-fs" in message and "fs, path" in message and got["errors"][0]["line"] == 1
    refused = write(api, "bob/7", "fs.js", code)
    assert refused.status_code == 400 and "fs, path" in refused.json()["message"]


def test_a_package_linked_from_outside_the_tenant_is_not_loaded(api: Server) -> None:
    fake_package(api.tenant("alice/1"), "secret", "1.0.0", "module.exports = 'alice secret';")
    modules = api.tenant("bob/7") / "node_modules"
    modules.mkdir(parents=True, exist_ok=True)
    (modules / "secret").symlink_to(api.tenant("alice/1") / "node_modules" / "secret")
    got = api.client.post(f"{D}/check", params={"subdomain": "bob", "execId": "7"},
                          json={"modules": ["secret"]}).json()
    assert got["missing"] == ["secret"]
    write(api, "bob/7", "steal.js", "return require('secret');\n", validate=False)
    assert "alice secret" not in run(api, "bob/7", "/steal").text


def test_bundled_lists_builtins_and_what_is_installed(api: Server) -> None:
    fake_package(api.tenant("bob/7"), "@scope/thing", "0.1.0", "module.exports = 1;")
    got = api.client.get(f"{D}/bundled", params={"subdomain": "bob", "execId": "7"}).json()
    assert got["builtin"] == ["buffer", "crypto", "process", "timers", "url", "util"]
    assert {"name": "@scope/thing", "kind": "installed", "version": "0.1.0"} in got["installed"]
    assert got["count"] == len(got["modules"])


@pytest.mark.parametrize("spec", ["file:../../alice/1", "../x", "git+https://x/y.git",
                                  "https://example.com/x.tgz", "user/repo", "lodash@file:x",
                                  "x@npm:y", ""])
def test_install_refuses_anything_but_registry_packages(api: Server, spec: str) -> None:
    r = api.client.post(f"{D}/install", json={"modules": spec})
    assert r.status_code == 400, r.text
    assert r.json()["error"] in ("invalid_module", "missing_input")


def test_a_tenant_token_cannot_install_into_another_tenant(api: Server) -> None:
    r = httpx.post(f"{api.base}{D}/install", params={"subdomain": "bob", "execId": "7"},
                   json={"modules": "lodash"}, headers={"authorization": f"Bearer {ALICE_TOKEN}"})
    assert r.status_code == 403


def test_package_json_is_made_edited_and_read(api: Server) -> None:
    q = {"subdomain": "bob", "execId": "7"}
    (api.tenant("bob/7") / "package.json").unlink(missing_ok=True)
    assert api.client.get(f"{P}/read", params=q).status_code == 404
    made = api.client.post(f"{P}/init", params=q, json={"name": "bobs"}).json()
    assert made["created"] is True and made["package"]["name"] == "bobs"
    again = api.client.post(f"{P}/init", params=q, json={})
    assert again.status_code == 409 and "force" in again.json()["message"]
    assert api.client.post(f"{P}/init", params=q, json={"force": True}).json()["created"] is False
    updated = api.client.post(f"{P}/update", params=q, json={
        "dependencies": "dayjs@^1.11.0, zod", "scripts": '{"build": "tsc"}',
        "metadata": {"description": "bob's"}}).json()
    assert updated["package"]["dependencies"] == {"dayjs": "^1.11.0", "zod": "latest"}
    assert updated["installed"] is False
    removed = api.client.post(f"{P}/update", params=q, json={"remove": "zod"}).json()
    assert removed["removed"] == ["zod"]
    read = api.client.get(f"{P}/read", params=q).json()
    assert read["dependencies"] == {"dayjs": "^1.11.0"}
    assert read["package"]["scripts"] == {"build": "tsc"}
    assert read["package"]["description"] == "bob's"
    assert read["installed"]["greeter"] == "2.0.0"


@pytest.mark.parametrize("body", [{"dependencies": {"x": "file:../../alice/1"}},
                                  {"dependencies": "{not json"},
                                  {"metadata": {"dependencies": {}}},
                                  {"scripts": "build"}])
def test_package_update_refuses_what_it_cannot_store(api: Server, body: dict[str, object]) -> None:
    r = api.client.post(f"{P}/update", params={"subdomain": "bob", "execId": "7"}, json=body)
    assert r.status_code == 400, r.text


def test_compare_and_pin_need_a_package_json(api: Server) -> None:
    q = {"subdomain": "default", "execId": "1"}
    (api.tenant("default/1") / "package.json").unlink(missing_ok=True)
    assert api.client.post(f"{P}/compare", params=q, json={}).status_code == 404
    assert api.client.post(f"{P}/pin", params=q, json={}).status_code == 404


# -- with the registry ------------------------------------------------------------------------

def test_require_lodash_works_after_install_and_pin_makes_it_exact(api: Server) -> None:
    needs_registry()
    q = {"subdomain": "alice", "execId": "1"}
    code = "const _ = require('lodash');\nreturn { chunks: _.chunk([1, 2, 3, 4], 2) };\n"
    before = api.client.post(f"{D}/check", params=q, json={"code": code}).json()
    assert before["missing"] == ["lodash"]
    done = api.client.post(f"{D}/install", params=q, json={"modules": "lodash"}, timeout=300)
    assert done.status_code == 200, done.text
    result = done.json()["results"][0]
    assert result["status"] == "installed" and result["version"].startswith("4.")
    assert api.client.post(f"{D}/check", params=q, json={"code": code}).json()["installed"] == [
        "lodash"]
    assert write(api, "alice/1", "chunks.js", code).status_code == 200
    assert run(api, "alice/1", "/chunks").json() == {"chunks": [[1, 2], [3, 4]]}
    # lodash's load takes about the inline slice: every request answers, none waits for its timeout
    exported = "// @timeout 3000\nconst _ = require('lodash');\nmodule.exports = () => _.VERSION;\n"
    assert write(api, "alice/1", "exported.js", exported).status_code == 200
    answers = [run(api, "alice/1", "/exported") for _ in range(8)]
    assert [r.status_code for r in answers] == [200] * 8
    again = api.client.post(f"{D}/install", params=q, json={"modules": ["lodash"]}).json()
    assert again["results"][0]["status"] == "already-installed" and again["durationMs"] == 0
    pinned = api.client.post(f"{P}/pin", params=q, json={"packages": ["lodash"]}).json()
    version = result["version"]
    assert pinned["pinned"] == [f"lodash: ^{version} → {version}"]
    assert pinned["package"]["dependencies"]["lodash"] == version


def test_esm_and_typescript_imports_of_installed_packages_run(api: Server) -> None:
    needs_registry()
    q = {"subdomain": "alice", "execId": "1"}
    done = api.client.post(f"{D}/install", params=q,
                           json={"modules": ["dayjs", "zod@3", "uuid"]}, timeout=300)
    assert done.status_code == 200, done.text
    assert {r["name"] for r in done.json()["results"]} == {"dayjs", "zod", "uuid"}
    code = ("import dayjs from 'dayjs';\nimport { z } from 'zod';\nimport { v4 } from 'uuid';\n"
            "const User = z.object({ name: z.string() });\n"
            "return { year: dayjs('2021-03-04').format('YYYY'), user: User.parse({ name: 'a' }),"
            " bad: User.safeParse({}).success, id: v4().length };\n")
    written = write(api, "alice/1", "esm.ts", code)
    assert written.status_code == 200, written.text
    assert run(api, "alice/1", "/esm").json() == {"year": "2021", "user": {"name": "a"},
                                                   "bad": False, "id": 36}


def test_an_upgrade_recompiles_the_scripts_that_bundle_the_package(api: Server) -> None:
    needs_registry()
    q = {"subdomain": "default", "execId": "1"}
    write(api, "default/1", "version.js", "return require('lodash').VERSION;\n", validate=False)
    first = api.client.post(f"{D}/install", params=q, json={"modules": "lodash@4.17.20"},
                            timeout=300)
    assert first.status_code == 200, first.text
    assert run(api, "default/1", "/version").text == "4.17.20"
    second = api.client.post(f"{D}/install", params=q,
                             json={"modules": "lodash@4.17.21", "force": True}, timeout=300)
    assert second.json()["recompiled"] >= 1
    assert run(api, "default/1", "/version").text == "4.17.21"


def test_package_install_compare_and_concurrent_installs(api: Server) -> None:
    needs_registry()
    q = {"subdomain": "default", "execId": "1"}
    api.client.post(f"{P}/update", params=q, json={"dependencies": {"dayjs": "^1.11.0"}})
    answers: list[httpx.Response] = []

    def install(body: dict[str, object]) -> None:
        answers.append(api.client.post(f"{P}/install", params=q, json=body, timeout=300))

    threads = [threading.Thread(target=install, args=(b,))
               for b in ({"packages": []}, {"packages": ["uuid"]})]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    compared = api.client.post(f"{P}/compare", params=q, json={}).json()
    rows = {r["name"]: r["status"] for r in compared["packages"]}
    assert rows["dayjs"] == "ok" and rows["uuid"] == "ok" and compared["inSync"] is True
    api.client.post(f"{P}/update", params=q, json={"dependencies": {"zod": "^3.0.0"},
                                                   "remove": "uuid"})
    rows = {r["name"]: r["status"]
            for r in api.client.post(f"{P}/compare", params=q, json={}).json()["packages"]}
    assert rows["zod"] == "missing" and rows["uuid"] == "extraneous"
    api.client.post(f"{P}/update", params=q, json={"dependencies": {"dayjs": "^0.1.0"}})
    rows = {r["name"]: r["status"]
            for r in api.client.post(f"{P}/compare", params=q, json={}).json()["packages"]}
    assert rows["dayjs"] == "mismatch"


def test_an_unknown_package_is_a_400_with_npms_reason(api: Server) -> None:
    needs_registry()
    r = api.client.post(f"{D}/install", params={"subdomain": "bob", "execId": "7"},
                        json={"modules": "wexec-no-such-package-zz9q"}, timeout=300)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "npm_failed" and r.json()["npmCode"] == "E404"
    assert "wexec-no-such-package-zz9q" in r.json()["message"]


def test_an_install_past_the_timeout_is_stopped_and_answered_504(tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    write_scripts(tmp_path, {"hello.ts": "return 1;\n"})
    env = {"WEXEC_API_TOKEN": ADMIN_TOKEN, "WEXEC_NPM_TIMEOUT_S": "0.05"}
    with running_server(["--scripts", str(tmp_path)], env=env) as base:
        r = httpx.post(f"{base}{D}/install", json={"modules": "lodash"}, timeout=60,
                       headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 504 and r.json()["error"] == "npm_timeout"
    assert "WEXEC_NPM_TIMEOUT_S" in r.json()["message"]
    assert not (tmp_path / "node_modules" / "lodash").exists()


def test_every_server_process_serves_what_another_installed(tmp_path: Path) -> None:
    """An install answered by one process recompiles there; the others notice the changed
    node_modules/.package-lock.json on their next scan and recompile too."""
    fake_package(tmp_path, "flag", "1.0.0", "module.exports = 'one';")
    lock = tmp_path / "node_modules" / ".package-lock.json"
    lock.write_text('{"packages": {"node_modules/flag": {"version": "1.0.0"}}}')
    write_scripts(tmp_path, {"flag.js": "return require('flag');\n"})

    def answers(base: str) -> set[str]:
        return {httpx.get(f"{base}/flag", headers={"connection": "close"}, timeout=30).text
                for _ in range(12)}

    with running_server(["--scripts", str(tmp_path), "--workers", "2"]) as base:
        assert answers(base) == {"one"}
        fake_package(tmp_path, "flag", "2.0.0", "module.exports = 'two';")
        lock.write_text('{"packages": {"node_modules/flag": {"version": "2.0.0"}}}')
        deadline = time.monotonic() + 10
        while answers(base) != {"two"} and time.monotonic() < deadline:
            time.sleep(0.2)
        assert answers(base) == {"two"}


@pytest.mark.parametrize("name, content, error", [
    (".npmrc", "registry=http://169.254.169.254/\n", "npmrc_refused"),
    ("package.json", '{"dependencies": {"other": "file:../../alice/1"}}', "invalid_module"),
    ("package-lock.json", '{"packages": {"node_modules/x": {"resolved": "http://10.0.0.1/x.tgz"}}}',
     "lock_refused"),
    ("package-lock.json", '{"packages": {"node_modules/x": {"link": true}}}', "lock_refused"),
])
def test_npm_never_runs_on_what_a_tenant_wrote_to_reach_outside(
        api: Server, name: str, content: str, error: str) -> None:
    """Those files can be written with scripts/write: npm would read them."""
    q = {"subdomain": "bob", "execId": "7"}
    file = api.tenant("bob/7") / name
    saved = file.read_text() if file.exists() else None
    file.write_text(content)
    try:
        for path, body in ((f"{D}/install", {"modules": "lodash"}),
                           (f"{P}/install", {"packages": []})):
            r = api.client.post(path, params=q, json=body)
            assert r.status_code == 400 and r.json()["error"] == error, r.text
        assert not (api.tenant("bob/7") / "node_modules" / "lodash").exists()
    finally:
        if saved is None:
            file.unlink()
        else:
            file.write_text(saved)
