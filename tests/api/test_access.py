"""Who may call the management API, over real HTTP: the all-tenants token, a tenant's token,
no token, and a server with none configured (loopback only; `wexec serve` refuses otherwise)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from runtime.api.tokens import hash_token
from runtime.app import create_app
from runtime.config import Settings
from tests.api.conftest import ADMIN_TOKEN, ALICE_TOKEN, PREFIX, Server
from tests.api.test_app import Lifespan
from tests.support import REPO, free_port


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_the_all_tenants_token_acts_on_every_tenant(api: Server) -> None:
    for sub, exec_id in (("default", "1"), ("alice", "1"), ("bob", "7")):
        r = api.client.get(f"{PREFIX}/scripts/read",
                           params={"path": "hello.ts", "execId": exec_id, "subdomain": sub})
        assert r.status_code == 200, r.text
        assert r.json()["content"] == f"return 'hello from {sub}/{exec_id}';\n"


def test_a_tenant_token_acts_on_its_tenant_only(api: Server) -> None:
    with httpx.Client(base_url=api.base, headers=bearer(ALICE_TOKEN)) as alice:
        own = alice.get(f"{PREFIX}/scripts/read", params={"path": "hello.ts"})
        assert own.status_code == 200 and "alice/1" in own.json()["content"]
        for params in ({"execId": "7", "subdomain": "bob"}, {"execId": "1"},
                       {"execId": "9", "subdomain": "nobody"}):
            r = alice.get(f"{PREFIX}/scripts/read", params={"path": "hello.ts", **params})
            assert r.status_code == 403, r.text
            assert r.json()["error"] == "forbidden" and "grants tenant alice/1" in r.json()["message"]
        # in the body too, and whatever the Host header says
        r = alice.post(f"{PREFIX}/scripts/write", headers={"host": "bob-7.example.com"},
                       json={"path": "x.ts", "content": "return 1;", "execId": "7",
                             "subdomain": "bob"})
        assert r.status_code == 403
        assert not (api.tenant("bob/7") / "x.ts").exists()
        # what acts on every tenant needs the all-tenants token
        r = alice.post(f"{PREFIX}/cache/clear", json={"clearAll": True})
        assert r.status_code == 403 and "WEXEC_API_TOKEN" in r.json()["message"]
        assert alice.get(f"{PREFIX}/list").json()["execIds"] == ["1"]


@pytest.mark.parametrize("headers", [{}, bearer("wrong"), {"authorization": "Basic Zm9v"},
                                     bearer(hash_token(ALICE_TOKEN))])
def test_no_token_or_a_wrong_one_is_a_401_saying_what_to_send(api: Server,
                                                              headers: dict[str, str]) -> None:
    r = httpx.get(f"{api.base}{PREFIX}/scripts/list", headers=headers)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in r.json()["message"] or "token" in r.json()["message"]


def test_a_call_is_admitted_before_its_body_is_read_and_bodies_are_capped(api: Server) -> None:
    big = b'{"path": "big.ts", "content": "' + b"x" * (11 * 1024 * 1024) + b'"}'
    anonymous = httpx.post(f"{api.base}{PREFIX}/scripts/write", content=big,
                           headers={"content-type": "application/json"})
    assert anonymous.status_code == 401
    r = api.client.post(f"{PREFIX}/scripts/write", content=big,
                        headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"
    assert "WEXEC_MAX_BODY_BYTES" in r.json()["message"]


def test_the_token_is_accepted_as_script_tokens_are(api: Server) -> None:
    for headers, params in (({"x-token": ADMIN_TOKEN}, {}), ({}, {"token": ADMIN_TOKEN})):
        r = httpx.get(f"{api.base}{PREFIX}/list", headers=headers, params=params)
        assert r.status_code == 200, r.text


def test_health_and_the_openapi_document_are_open(api: Server) -> None:
    for path in ("/health", "/openapi.json", "/openapi.yaml", "/docs"):
        assert httpx.get(f"{api.base}{PREFIX}{path}").status_code == 200, path
    spec = httpx.get(f"{api.base}{PREFIX}/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_without_any_token_the_api_answers_loopback_clients(open_api: Server) -> None:
    assert open_api.client.get(f"{PREFIX}/list").json()["execIds"] == ["1"]


@pytest.mark.parametrize(("host", "client"), [("127.0.0.1", "10.1.2.3"),
                                               ("0.0.0.0", "127.0.0.1")])
async def test_without_any_token_other_clients_and_binds_are_refused(
        tmp_path: Path, host: str, client: str) -> None:
    """A server started some other way than `wexec serve` (which refuses to) is still closed."""
    app = create_app(Settings(scripts=REPO / "scripts", data=tmp_path, host=host))
    lifespan = Lifespan(app)
    await lifespan.start()
    try:
        transport = httpx.ASGITransport(app=app, client=(client, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
            r = await c.get(f"{PREFIX}/list")
            assert (await c.get(f"{PREFIX}/health")).status_code == 200
    finally:
        await lifespan.stop()
    assert r.status_code == 403 and "WEXEC_API_TOKEN" in r.json()["message"]
    assert host in r.json()["message"] and client in r.json()["message"]


def test_serve_refuses_a_public_address_without_a_token() -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in ("WEXEC_API_TOKEN", "WEXEC_API_TENANT_TOKENS")}
    done = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "serve", "--host", "0.0.0.0", "--port",
         str(free_port())], cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
        check=False)
    assert done.returncode == 2
    assert "refusing to serve on 0.0.0.0" in done.stderr and "WEXEC_API_TOKEN" in done.stderr


def test_token_hash_prints_what_the_settings_store() -> None:
    for argv, stdin in ((["s3cret"], None), ([], "s3cret\n")):
        done = subprocess.run([sys.executable, "-m", "runtime.cli", "token", "hash", *argv],
                              cwd=REPO, input=stdin, capture_output=True, text=True, check=True)
        assert done.stdout.strip() == hash_token("s3cret")
    assert hash_token("s3cret").startswith("sha256:") and len(hash_token("s3cret")) == 71
    tokens = {"alice/1": hash_token("s3cret")}
    assert Settings(api_tenant_tokens=tokens).api_tenant_tokens == tokens
    for bad in ({"alice": hash_token("x")}, {"alice/1": "s3cret"}):
        with pytest.raises(ValueError, match="api_tenant_tokens"):
            Settings(api_tenant_tokens=bad)
