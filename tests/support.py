"""What tests share: settings on the machine's build cache, and the real `wexec serve` started in a
subprocess on a free port, with scripts written for it."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx

from runtime.config import Settings

if TYPE_CHECKING:
    from runtime.app import App

REPO = Path(__file__).resolve().parent.parent


def settings_for_tests(**overrides: object) -> Settings:
    """Settings for tests: the machine's shared build cache, unless WEXEC_CACHE says otherwise."""
    cache = os.environ.get("WEXEC_CACHE")
    if cache:
        overrides.setdefault("cache", Path(cache))
    return Settings(**overrides)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_scripts(root: Path, files: dict[str, str]) -> None:
    for rel, source in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)


def write_atomically(path: Path, source: str) -> None:
    """Replace a script the way editors and the management API do: write aside, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(source)
    tmp.replace(path)


@contextmanager
def running_server(
    args: list[str], env: dict[str, str] | None = None, startup_s: float = 180.0,
    output_path: Path | None = None,
) -> Iterator[str]:
    """`wexec serve ARGS` on a free port; yields its base URL, stops it afterwards.

    The server's own output (Python's log) goes to `output_path` when given, for tests that
    read it.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # Output goes to a file: a pipe nobody reads could fill up and stall the server.
    with (open(output_path, "w+b") if output_path is not None else tempfile.TemporaryFile()) as output:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runtime.cli", "serve", "--port", str(port), *args],
            cwd=REPO, env={**os.environ, **(env or {})}, stdout=output, stderr=subprocess.STDOUT,
        )
        try:
            _wait_healthy(proc, base, output, startup_s)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_healthy(proc: subprocess.Popen, base: str, output: IO[bytes], startup_s: float) -> None:
    deadline = time.monotonic() + startup_s
    while True:
        if proc.poll() is not None:
            output.seek(0)
            raise RuntimeError(f"wexec serve exited with {proc.returncode}:\n{output.read().decode()}")
        try:
            if httpx.get(base + "/api/v1/exec/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("wexec serve did not become healthy in time")
        time.sleep(0.1)


def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait until `check()` holds (hot reload is asynchronous by design)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def refused(r: httpx.Response, status: int, error: str, *words: str) -> dict[str, Any]:
    """An API error answer: its status, its code, JSON, and a message naming what to change."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == error, body
    for word in words:
        assert word in body["message"], body
    return body  # type: ignore[no-any-return]


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
