"""Endpoints that write themselves (scripts/api/[...slug].ts) over real HTTP: the first request
to a missing path asks the local model for a handler, runs it and saves it; later requests are
served by the saved script, with no model call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.openai_server import OpenAIServer, openai_server
from tests.support import REPO, running_server, write_scripts

CATCH_ALL = "api/[...slug].ts"
HANDLER = ("const n = Number(req.query.n ?? 1);\n"
           "return res.status(201).json({ doubled: n * 2, script: metadata.scriptPath });")


@pytest.fixture(scope="module")
def provider() -> Iterator[OpenAIServer]:
    with openai_server() as server:
        yield server


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("on-demand") / "scripts"
    write_scripts(root, {CATCH_ALL: (REPO / "scripts" / CATCH_ALL).read_text()})
    return root


@pytest.fixture(scope="module")
def client(scripts: Path, provider: OpenAIServer) -> Iterator[httpx.Client]:
    env = {"WEXEC_AI_BASE_URL": provider.base_url, "WEXEC_AI_MODEL": "coder"}
    with running_server(["--scripts", str(scripts), "--data", str(scripts.parent / "data")],
                        env) as url, httpx.Client(base_url=url, timeout=60) as c:
        yield c


def test_a_missing_endpoint_is_written_once_then_served_natively(
    client: httpx.Client, provider: OpenAIServer, scripts: Path
) -> None:
    provider.reply(f"```js\n{HANDLER}\n```")
    calls = provider.calls
    first = client.get("/api/math/double", params={"n": 21})
    assert first.status_code == 201, first.text
    assert first.json() == {"doubled": 42, "script": "isolate.eval.ts"}
    assert provider.calls == calls + 1
    asked = provider.requests[-1]
    assert asked["model"] == "coder"
    assert asked["messages"][0]["role"] == "system"
    assert asked["messages"][1]["content"].startswith('GET /api/math/double\nQuery: {"n":"21"}')
    saved = (scripts / "api" / "math" / "double.ts").read_text()
    assert saved.startswith('"use strict";')
    assert HANDLER in saved  # the fence is gone

    again = client.get("/api/math/double", params={"n": 5})
    assert again.status_code == 201
    assert again.json() == {"doubled": 10, "script": "api/math/double.ts"}  # the saved script
    assert provider.calls == calls + 1  # no model call


def test_a_handler_that_fails_is_not_saved(
    client: httpx.Client, provider: OpenAIServer, scripts: Path
) -> None:
    provider.reply("return undefinedThing.field;")
    r = client.get("/api/broken")
    assert r.status_code == 502
    assert r.json()["error"] == "generated_handler_failed"
    assert "ReferenceError" in r.json()["message"]
    assert not (scripts / "api" / "broken.ts").exists()


def test_a_path_that_cannot_be_a_file_name_asks_nobody(
    client: httpx.Client, provider: OpenAIServer
) -> None:
    calls = provider.calls
    r = client.get("/api/.hidden/x")
    assert r.status_code == 404
    assert provider.calls == calls


def test_magic_comments_the_model_writes_grant_the_saved_script_nothing(
    client: httpx.Client, provider: OpenAIServer
) -> None:
    provider.reply("// @ai true\nreturn (await generateText({ prompt: 'x' })).text;")
    calls = provider.calls
    # run inside the catch-all, the code holds the catch-all's grants: the model is asked twice
    assert client.get("/api/sneaky").text == "echo: x"
    assert provider.calls == calls + 2
    # saved, it is a script of its own, and its // @ai true is not a magic comment there
    r = client.get("/api/sneaky")
    assert r.status_code == 500
    assert "not granted ai" in r.json()["message"]
    assert provider.calls == calls + 2
