"""The API app as the process serves it: mounted once under /api/v1/exec, built by the lifespan.

The app is started here as an ASGI server starts it (the lifespan protocol), not through a
server subprocess: these tests are about the app's own wiring.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from runtime.app import App, create_app
from runtime.config import Settings
from tests.support import Lifespan

PREFIX = "/api/v1/exec"


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    root = tmp_path / "scripts"
    (root / "api").mkdir(parents=True)
    (root / "hello.ts").write_text("return 'hello';\n")
    (root / "api" / "users.ts").write_text("return [];\n")
    return root


@pytest.fixture
def app(tmp_path: Path, scripts: Path) -> App:
    return create_app(Settings(scripts=scripts, data=tmp_path / "data"))


# The app's lifespan and its requests run on the test's own loop, as a server runs them on one.
@pytest_asyncio.fixture(loop_scope="function")
async def asgi(app: App) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app`, which has not started."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
        yield c


@pytest.fixture
def lifespan(app: App) -> Lifespan:
    return Lifespan(app)


@pytest_asyncio.fixture(loop_scope="function")
async def client(asgi: httpx.AsyncClient, lifespan: Lifespan
                 ) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` after its start-up; the app is shut down afterwards."""
    await lifespan.start()
    yield asgi
    await lifespan.stop()


async def test_health_reports_what_the_process_serves(client: httpx.AsyncClient) -> None:
    r = await client.get(f"{PREFIX}/health")
    assert r.status_code == 200, r.text
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
    assert {"/health", "/scripts/write", "/validate/script", "/magic-comments/schema",
            "/route/resolve", "/cache/clear", "/list", "/system/restart",
            "/templates/list", "/user-openapi/spec", "/types",
            "/shared-state/get", "/logs/search", "/monitor/metrics",
            "/schedules/list"} <= set(spec["paths"])
    health = spec["components"]["schemas"]["Health"]
    assert set(health["required"]) == {"status", "version", "uptime_s", "tenants", "scripts",
                                       "inflight", "ready", "checks"}


async def test_the_api_exists_while_the_process_runs_and_its_lifespan_is_the_apps(
        asgi: httpx.AsyncClient, lifespan: Lifespan) -> None:
    before = await asgi.get(f"{PREFIX}/health")
    assert before.status_code == 500 and before.json()["error"] == "internal_error"
    assert "has not started" in before.json()["message"]
    await lifespan.start()
    assert (await asgi.get(f"{PREFIX}/health")).status_code == 200
    await lifespan.stop()
    after = await asgi.get(f"{PREFIX}/health")
    assert after.status_code == 500 and after.json()["path"] == f"{PREFIX}/health"
    assert (await asgi.get("/hello")).status_code == 503


def test_importing_the_app_does_not_load_fastapi() -> None:
    """Start-up does not wait for FastAPI's import: the lifespan builds the API on a thread."""
    code = "import sys, runtime.app; print('fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_what_start_up_builds_the_management_api_included_is_left_out_of_collections() -> None:
    """A full collection walks what requests leave, not the heap start-up built: the API alone
    is some 50,000 objects, and walking them stalled every request in flight."""
    code = """if True:
        import asyncio, gc, sys, tempfile
        from pathlib import Path
        from runtime.app import create_app
        from runtime.config import Settings
        from tests.support import Lifespan
        root = Path(tempfile.mkdtemp())
        (root / "hello.ts").write_text("return 1;\\n")
        app = create_app(Settings(scripts=root, data=Path(tempfile.mkdtemp())))
        async def main():
            life = Lifespan(app)
            await life.start()
            await app._api
            await asyncio.sleep(0)  # its done callbacks
            print(len(gc.get_objects()))
            await life.stop()
        asyncio.run(main())
    """
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert int(out.stdout.strip()) < 10_000
