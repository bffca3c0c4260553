"""Every failure of the management API is the server's one JSON shape, with what to change."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel

from runtime.api import errors
from runtime.http.errors import HTTPError


class Move(BaseModel):
    source: str
    target: str
    overwrite: bool = False


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    """An API app with the server's error handlers and endpoints that fail each way."""
    router = APIRouter()

    @router.post("/move")
    async def move(body: Move) -> dict[str, str]:
        raise HTTPError(409, "exists", f"{body.target}: already exists; pass overwrite=true",
                        [("x-hint", "overwrite")], path=body.target)

    @router.get("/crash")
    async def crash() -> None:
        raise RuntimeError("the disk went away")

    app = FastAPI(exception_handlers=errors.HANDLERS)
    app.include_router(router)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://wexec") as client:
        yield client


async def test_a_raised_http_error_is_answered_as_it_is(api: httpx.AsyncClient) -> None:
    r = await api.post("/move", json={"source": "a.ts", "target": "b.ts"})
    assert r.status_code == 409 and r.headers["x-hint"] == "overwrite"
    assert r.json() == {"error": "exists", "message": "b.ts: already exists; pass overwrite=true",
                        "path": "b.ts"}


@pytest.mark.parametrize(("body", "problems"), [
    ({"source": "a.ts"}, [("body.target", "Field required")]),
    ({}, [("body.source", "Field required"), ("body.target", "Field required")]),
    ({"source": "a.ts", "target": "b.ts", "overwrite": "maybe"},
     [("body.overwrite", "Input should be a valid boolean, unable to interpret input")]),
    ([1], [("body", "Input should be a valid dictionary or object to extract fields from")]),
])
async def test_a_request_that_does_not_fit_its_model_lists_every_problem(
        api: httpx.AsyncClient, body: object, problems: list[tuple[str, str]]) -> None:
    r = await api.post("/move", json=body)
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    assert [(p["where"], p["message"]) for p in r.json()["problems"]] == problems
    for where, message in problems:
        assert f"{where}: {message}" in r.json()["message"]


async def test_a_body_that_is_not_json_is_invalid_not_a_crash(api: httpx.AsyncClient) -> None:
    r = await api.post("/move", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    assert r.json()["problems"][0]["where"].startswith("body")


async def test_a_crash_is_a_json_500_naming_the_request(api: httpx.AsyncClient) -> None:
    r = await api.get("/crash")
    assert r.status_code == 500 and r.json()["error"] == "internal_error"
    assert r.json()["message"] == "wexec failed to serve GET /crash: the disk went away"


async def test_routing_failures_are_json(api: httpx.AsyncClient) -> None:
    r = await api.get("/nowhere")
    assert r.status_code == 404 and r.json()["path"] == "/nowhere"
    assert "see GET /health" in r.json()["message"]
    r = await api.get("/move")
    assert r.status_code == 405 and r.json()["message"] == "GET /move: Method Not Allowed"
