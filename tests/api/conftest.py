"""Fixtures for the management API: the whole app, started as an ASGI server starts it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.app import App, create_app
from runtime.config import Settings


class Lifespan:
    """Runs an app's lifespan protocol the way an ASGI server does."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
        self._task = asyncio.create_task(self._app(scope, self._inbox.get, self._outbox.put))
        await self._event("startup")

    async def stop(self) -> None:
        await self._event("shutdown")
        assert self._task is not None
        await self._task

    async def _event(self, event: str) -> None:
        await self._inbox.put({"type": f"lifespan.{event}"})
        answer = await asyncio.wait_for(self._outbox.get(), 60)
        assert answer["type"] == f"lifespan.{event}.complete", answer


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


@pytest.fixture
async def asgi(app: App) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app`, which has not started."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
        yield c


@pytest.fixture
def lifespan(app: App) -> Lifespan:
    return Lifespan(app)


@pytest.fixture
async def client(asgi: httpx.AsyncClient, lifespan: Lifespan
                 ) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `app` after its start-up; the app is shut down afterwards."""
    await lifespan.start()
    yield asgi
    await lifespan.stop()
