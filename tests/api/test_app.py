"""The API app as the process serves it: mounted once under /api/v1/exec, built by the lifespan."""

from __future__ import annotations

from typing import Any

import httpx

PREFIX = "/api/v1/exec"


async def test_health_reports_what_the_process_serves(client: httpx.AsyncClient) -> None:
    r = await client.get(f"{PREFIX}/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["tenants"] == 1 and body["scripts"] == 2
    assert body["inflight"] == 0 and body["uptime_s"] >= 0 and body["version"]


async def test_scripts_are_served_beside_the_api(client: httpx.AsyncClient) -> None:
    assert (await client.get("/hello")).text == "hello"
    assert (await client.get("/api/users")).json() == []


async def test_unknown_endpoints_and_methods_answer_json_naming_the_path(
        client: httpx.AsyncClient) -> None:
    r = await client.get(f"{PREFIX}/nope")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert r.json()["path"] == f"{PREFIX}/nope" and f"GET {PREFIX}/health" in r.json()["message"]
    r = await client.post(f"{PREFIX}/health")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"
    assert r.headers["allow"] == "GET" and r.json()["path"] == f"{PREFIX}/health"


async def test_openapi_is_generated_from_the_models(client: httpx.AsyncClient) -> None:
    spec = (await client.get(f"{PREFIX}/openapi.json")).json()
    assert spec["openapi"].startswith("3.1") and spec["servers"] == [{"url": PREFIX}]
    assert list(spec["paths"]) == ["/health"]
    health = spec["components"]["schemas"]["Health"]
    assert set(health["required"]) == {"status", "version", "uptime_s", "tenants", "scripts",
                                       "inflight"}


async def test_the_api_exists_while_the_process_runs_and_its_lifespan_is_the_apps(
        asgi: httpx.AsyncClient, lifespan: Any) -> None:
    before = await asgi.get(f"{PREFIX}/health")
    assert before.status_code == 500 and before.json()["error"] == "internal_error"
    assert "has not started" in before.json()["message"]
    await lifespan.start()
    assert (await asgi.get(f"{PREFIX}/health")).status_code == 200
    await lifespan.stop()
    after = await asgi.get(f"{PREFIX}/health")
    assert after.status_code == 500 and after.json()["path"] == f"{PREFIX}/health"
    assert (await asgi.get("/hello")).status_code == 503
