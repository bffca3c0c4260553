"""Built-in AI through real scripts over HTTP, answered by a local OpenAI-compatible server
(tests/openai_server.py: real HTTP, the real ``openai`` client in the host)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from runtime.host import ai, streams
from runtime.host.response import STREAM_BUFFER_BYTES
from runtime.sandbox import Invocation
from runtime.sandbox.errors import ScriptError, ScriptTimeout
from tests.host.harness import holding
from tests.openai_server import OpenAIServer, openai_server
from tests.support import running_server, settings_for_tests, write_scripts

KEY = "sk-test-never-shown-0123456789"

SCRIPTS = {
    "gen.ts": "// @ai true\n"
              "const r = await generateText({ model, prompt: String(req.query.q ?? 'hi') });\n"
              "return { text: r.text, usage: r.usage };\n",
    "tuned.ts": "// @ai-model anthropic/claude-test\n// @ai-temperature 0.3\n"
                "// @ai-max-tokens 77\n"
                "return (await generateText({ model, prompt: 'x' })).text;\n",
    "override.ts": "// @ai true\n// @ai-temperature 0.3\n"
                   "const r = await generateText({ model: openai('gpt-small'), prompt: 'x', "
                   "temperature: 1.5, maxTokens: 5, system: 'be brief' });\n"
                   "return r.text;\n",
    "object.ts": "// @ai true\n"
                 "const schema = { type: 'object', required: ['name', 'age'],\n"
                 "  properties: { name: { type: 'string' }, age: { type: 'integer' } } };\n"
                 "try {\n"
                 "  return (await generateObject({ model, schema, prompt: 'a person' })).object;\n"
                 "} catch (e) { return res.status(422).json({ name: e.name, message: e.message }); }\n",
    "passthrough.ts": "// @ai true\n"
                      "const c = await openai.chat.completions.create({ model: 'raw-model',\n"
                      "  messages: [{ role: 'user', content: 'hey' }], temperature: 0 });\n"
                      "return { content: c.choices[0].message.content, model: c.model };\n",
    "refused-param.ts": "// @ai true\n"
                        "return await openai.chat.completions.create({ messages: "
                        "[{ role: 'user', content: 'x' }], logit_bias: { 1: 2 } });\n",
    "stream.ts": "// @ai true\nreturn streamText({ model, prompt: 'count' }).toTextStreamResponse();\n",
    "stream-bare.ts": "// @ai true\nreturn streamText({ model, prompt: 'count' }).textStream;\n",
    "stream-later.ts": "// @ai true\nconst r = streamText({ model, prompt: 'count' });\n"
                       "await new Promise((resolve) => setTimeout(resolve, 5));\n"
                       "return r.toTextStreamResponse();\n",
    "stream-text.ts": "// @ai true\n"
                      "const r = streamText({ model, prompt: 'count' });\n"
                      "return { text: await r.text, usage: await r.usage, "
                      "finishReason: await r.finishReason };\n",
    "stream-raw.ts": "// @ai true\n"
                     "const s = await openai.chat.completions.create({ stream: true,\n"
                     "  messages: [{ role: 'user', content: 'q' }] });\n"
                     "const deltas = [];\n"
                     "for await (const c of s) deltas.push(c.choices[0]?.delta?.content ?? null);\n"
                     "return deltas;\n",
    "stream-fails.ts": "// @ai true\n"
                       "try { await streamText({ model, prompt: 'x' }).text; }\n"
                       "catch (e) { return res.status(502).json({ name: e.name, message: e.message }); }\n",
    "plain.ts": "return await generateText({ model, prompt: 'x' });\n",
    "env.ts": "// @ai true\nreturn { env: process.env, keys: Object.keys(globalThis) };\n",
    "support/bot.ts": "// @ai true\nreturn (await generateText({ model, prompt: 'q' })).text;\n",
    "support/bot.system.md": "You are the support bot.",
    "support/_system.md": "You are the support folder.",
    "support/other.ts": "// @ai true\nreturn (await generateText({ model, prompt: 'q' })).text;\n",
    "_system.md": "You are the root.",
    "linked/x.ts": "// @ai true\nreturn (await generateText({ model, prompt: 'q' })).text;\n",
    "root.ts": "// @ai true\nreturn (await generateText({ model, prompt: 'q' })).text;\n",
}


@pytest.fixture(scope="module")
def provider() -> Iterator[OpenAIServer]:
    with openai_server() as server:
        yield server


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ai")
    write_scripts(root / "scripts", SCRIPTS)
    (root / "outside.md").write_text("a prompt from outside the tenant")
    (root / "scripts" / "linked" / "_system.md").symlink_to(root / "outside.md")
    return root


@pytest.fixture(scope="module")
def base(root: Path, provider: OpenAIServer) -> Iterator[str]:
    env = {"WEXEC_AI_BASE_URL": provider.base_url, "WEXEC_AI_API_KEY": KEY,
           "WEXEC_AI_MODEL": "default-model"}
    with running_server(["--scripts", str(root / "scripts"), "--data", str(root / "data")], env,
                        output_path=root / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30) as c:
        yield c


def test_generate_text_answers_with_the_providers_text_and_usage(
    client: httpx.Client, provider: OpenAIServer
) -> None:
    provider.reply("Hello there")
    r = client.get("/gen", params={"q": "greet me"})
    assert r.status_code == 200, r.text
    assert r.json() == {"text": "Hello there", "usage": {
        "promptTokens": 7, "completionTokens": 2, "totalTokens": 9,
        "inputTokens": 7, "outputTokens": 2}}
    sent = provider.requests[-1]
    assert sent["model"] == "default-model"
    assert sent["messages"] == [{"role": "system", "content": "You are the root."},
                                {"role": "user", "content": "greet me"}]
    assert sent["authorization"] == f"Bearer {KEY}"


def test_an_answer_that_is_not_a_chat_completion_fails_the_call_saying_what_came(
    client: httpx.Client, provider: OpenAIServer
) -> None:
    provider.reply("", raw=b'{"status": "queued"}')
    r = client.get("/gen")
    assert r.status_code == 500
    assert ("AI call failed: the AI provider's answer is not a chat completion: "
            """'{"status": "queued"}'""") in r.json()["message"]


def test_magic_comments_reach_the_provider_as_model_temperature_and_max_tokens(
    client: httpx.Client, provider: OpenAIServer
) -> None:
    assert client.get("/tuned").status_code == 200
    sent = provider.requests[-1]
    assert (sent["model"], sent["temperature"], sent["max_tokens"]) == (
        "anthropic/claude-test", 0.3, 77)


def test_a_calls_own_settings_beat_the_magic_comments(
    client: httpx.Client, provider: OpenAIServer
) -> None:
    assert client.get("/override").text == "echo: x"
    sent = provider.requests[-1]
    assert (sent["model"], sent["temperature"], sent["max_tokens"]) == ("gpt-small", 1.5, 5)
    assert sent["messages"][0] == {"role": "system", "content": "be brief"}


@pytest.mark.parametrize(("path", "prompt"), [
    ("/support/bot", "You are the support bot."),  # the sibling <script>.system.md
    ("/support/other", "You are the support folder."),  # its folder's _system.md
    ("/root", "You are the root."),  # the tenant root's _system.md
    ("/linked/x", "You are the root."),  # its folder's is a link out of the tenant: passed over
])
def test_the_nearest_system_prompt_file_applies(
    client: httpx.Client, provider: OpenAIServer, path: str, prompt: str
) -> None:
    assert client.get(path).status_code == 200
    assert provider.requests[-1]["messages"][0] == {"role": "system", "content": prompt}


def test_generate_object_returns_an_object_its_schema_accepts(
    client: httpx.Client, provider: OpenAIServer
) -> None:
    provider.reply('```json\n{"name": "Ada", "age": 36}\n```')
    r = client.get("/object")
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "Ada", "age": 36}
    sent = provider.requests[-1]
    assert sent["response_format"] == {"type": "json_object"}
    assert '"required": ["name", "age"]' in sent["messages"][-1]["content"]


@pytest.mark.parametrize(("answer", "why"), [
    ('{"name": "Ada", "age": "old"}', "at /age: 'old' is not of type 'integer'"),
    ('{"name": "Ada"}', "'age' is a required property"),
    ("I cannot do that", "is not JSON"),
])
def test_generate_object_rejects_an_answer_its_schema_refuses(
    client: httpx.Client, provider: OpenAIServer, answer: str, why: str
) -> None:
    provider.reply(answer)
    r = client.get("/object")
    assert r.status_code == 422
    assert r.json()["name"] == "NoObjectGeneratedError"
    assert why in r.json()["message"]


def test_streamed_text_reaches_the_client_chunk_by_chunk_as_the_provider_sends_it(
    base: str, provider: OpenAIServer
) -> None:
    chunks = ("one ", "two ", "three ", "four")
    provider.reply("".join(chunks), chunks=chunks, delay_s=0.25)
    arrived: list[tuple[float, bytes]] = []
    with httpx.stream("GET", base + "/stream", timeout=30) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        for chunk in r.iter_raw():
            arrived.append((time.monotonic(), chunk))
    assert b"".join(c for _, c in arrived) == b"one two three four"
    assert len(arrived) == len(chunks)  # one HTTP chunk per provider chunk, none held back
    sent = provider.requests[-1]
    assert (sent["stream"], sent["stream_options"]) == (True, {"include_usage": True})
    assert (sent["model"], sent["authorization"]) == ("default-model", f"Bearer {KEY}")
    assert sent["messages"] == [{"role": "system", "content": "You are the root."},
                                {"role": "user", "content": "count"}]
    for (at, _), sent in zip(arrived, provider.sent_at, strict=True):
        # each reaches the client before the provider sends the next (250 ms later); the
        # bound leaves room for a loaded machine, a buffered body would miss it by far
        assert 0 <= at - sent < 0.2, [round(a - s, 4) for (a, _), s in zip(arrived, provider.sent_at)]


def test_a_text_stream_returned_as_it_is_streams_too(base: str, provider: OpenAIServer) -> None:
    provider.reply("a b", chunks=("a ", "b"), delay_s=0.2)
    with httpx.stream("GET", base + "/stream-bare", timeout=30) as r:
        parts = list(r.iter_raw())
    assert parts == [b"a ", b"b"]


def test_a_text_stream_returned_once_its_call_went_out_streams_the_same(
    base: str, provider: OpenAIServer
) -> None:
    # the call is under way when the script returns the stream: the guest reads it and streams
    # it, where a stream returned with its call still to go is fed to the client by the host
    provider.reply("a b c", chunks=("a ", "b ", "c"), delay_s=0.05)
    with httpx.stream("GET", base + "/stream-later", timeout=30) as r:
        assert r.headers["content-type"] == "text/plain; charset=utf-8"
        parts = list(r.iter_raw())
    assert parts == [b"a ", b"b ", b"c"]


def test_a_client_leaving_a_streamed_answer_cuts_the_providers_stream(
    base: str, provider: OpenAIServer
) -> None:
    cut = provider.cut
    provider.reply("a b c d", chunks=("a ", "b ", "c ", "d"), delay_s=0.3)
    with httpx.stream("GET", base + "/stream", timeout=30) as r:
        assert next(r.iter_raw()) == b"a "
    deadline = time.monotonic() + 5
    while provider.cut == cut and time.monotonic() < deadline:
        time.sleep(0.02)
    assert provider.cut == cut + 1


def test_stream_text_settles_text_usage_and_finish_reason(
    client: httpx.Client, provider: OpenAIServer
) -> None:
    provider.reply("x y z")
    assert client.get("/stream-text").json() == {
        "text": "x y z", "finishReason": "stop", "usage": {
            "promptTokens": 7, "completionTokens": 3, "totalTokens": 10,
            "inputTokens": 7, "outputTokens": 3}}


def test_openai_chat_completions_create_streams_raw_chunks(
    client: httpx.Client, provider: OpenAIServer
) -> None:
    provider.reply("p q")
    assert client.get("/stream-raw").json() == ["p ", "q", None]


def test_a_provider_refusing_a_stream_rejects_the_call(
    client: httpx.Client, provider: OpenAIServer
) -> None:
    provider.reply("model overloaded", status=503)
    r = client.get("/stream-fails")
    assert r.status_code == 502
    assert r.json() == {"name": "AIError", "message":
                        "AI call failed: the AI provider answered 503: model overloaded"}


def test_openai_chat_completions_create_passes_through(
    client: httpx.Client, provider: OpenAIServer
) -> None:
    provider.reply("raw answer")
    r = client.get("/passthrough")
    assert r.json() == {"content": "raw answer", "model": "raw-model"}
    sent = provider.requests[-1]
    assert (sent["model"], sent["temperature"]) == ("raw-model", 0)


def test_a_parameter_scripts_may_not_set_is_refused(
    client: httpx.Client, provider: OpenAIServer
) -> None:
    calls = provider.calls
    r = client.get("/refused-param")
    assert r.status_code == 500
    assert "'logit_bias' is not a parameter scripts may set" in r.json()["message"]
    assert provider.calls == calls


def test_a_script_without_at_ai_is_refused(client: httpx.Client, provider: OpenAIServer) -> None:
    calls = provider.calls
    r = client.get("/plain")
    assert r.status_code == 500
    assert "not granted ai (// @ai true" in r.json()["message"]
    assert provider.calls == calls


def test_the_key_is_never_visible_to_scripts_or_in_logs(
    client: httpx.Client, provider: OpenAIServer, root: Path
) -> None:
    r = client.get("/env")
    assert r.status_code == 200
    assert KEY not in r.text
    provider.reply(f"Incorrect API key provided: {KEY}", status=401)
    r = client.get("/gen")
    assert "the AI provider answered 401: Incorrect API key provided: [key]" in r.json()["message"]
    assert KEY not in r.text
    logs = [*root.rglob("*.log")]
    assert logs
    for log in logs:
        assert KEY not in log.read_text(errors="replace")


def test_with_no_provider_an_ai_call_names_the_setting(tmp_path: Path) -> None:
    write_scripts(tmp_path / "scripts", {"gen.ts": SCRIPTS["gen.ts"]})
    env = {"WEXEC_AI_BASE_URL": "", "WEXEC_AI_API_KEY": ""}
    with running_server(["--scripts", str(tmp_path / "scripts"), "--data", str(tmp_path / "d")],
                        env) as url:
        r = httpx.get(url + "/gen", timeout=30)
    assert r.status_code == 500
    assert r.json()["message"].startswith("AIError: AI call refused: no AI provider")
    assert "set WEXEC_AI_BASE_URL" in r.json()["message"]


async def test_calls_past_the_per_request_cap_are_refused(provider: OpenAIServer) -> None:
    settings = settings_for_tests(memory_limit=32 * 1024 * 1024, ai_base_url=provider.base_url,
                                  ai_model="m", ai_max_calls=2)
    calls = provider.calls
    with holding(ai.UNIT, settings=settings) as h:
        r = await h.run("// @ai true\nconst out = [];\n"
                        "for (let i = 0; i < 3; i++) {\n"
                        "  try { out.push((await generateText({ prompt: 'x' })).text); }\n"
                        "  catch (e) { out.push(e.message); }\n"
                        "}\nreturn out;")
    assert json.loads(r.body) == ["echo: x", "echo: x", ("AI call refused: this request already "
                                  "made 2 AI calls; the cap is 2 per request (WEXEC_AI_MAX_CALLS)")]
    assert provider.calls == calls + 2


async def test_a_stream_past_the_output_cap_fails_mid_way(provider: OpenAIServer) -> None:
    settings = settings_for_tests(memory_limit=32 * 1024 * 1024, ai_base_url=provider.base_url,
                                  ai_model="m", ai_max_output_bytes=10)
    provider.reply("0123456 789abc def", chunks=("0123456", "789abc", "def"))
    with holding(ai.UNIT, streams.UNIT, settings=settings) as h:
        r = await h.run("// @ai true\nconst got = [];\n"
                        "try { for await (const t of streamText({ prompt: 'x' }).textStream) "
                        "got.push(t); }\n"
                        "catch (e) { return { got, error: e.message }; }")
    assert json.loads(r.body) == {"got": ["0123456"], "error": (
        "AI call stopped: this request received more than 10 bytes from the AI provider "
        "(WEXEC_AI_MAX_OUTPUT_BYTES)")}


async def test_a_streamed_answer_is_cut_at_the_requests_timeout_and_so_is_the_call(
    provider: OpenAIServer
) -> None:
    settings = settings_for_tests(memory_limit=32 * 1024 * 1024, ai_base_url=provider.base_url,
                                  ai_model="m")
    provider.reply("a b c", chunks=("a ", "b ", "c"), delay_s=0.4)
    cut = provider.cut
    with holding(ai.UNIT, settings=settings) as h:
        r = await h.run("// @ai true\n// @timeout 300\n"
                        "return streamText({ prompt: 'x' }).toTextStreamResponse();")
        assert r.stream is not None
        got = []
        with pytest.raises(ScriptTimeout):
            async for chunk in r.stream:
                got.append(chunk)
        assert got == [b"a "]
        deadline = time.monotonic() + 5
        while provider.cut == cut and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    assert provider.cut == cut + 1


async def test_a_streamed_answer_past_the_output_cap_ends_with_the_error(
    provider: OpenAIServer
) -> None:
    settings = settings_for_tests(memory_limit=32 * 1024 * 1024, ai_base_url=provider.base_url,
                                  ai_model="m", ai_max_output_bytes=10)
    provider.reply("0123456 789abc def", chunks=("0123456", "789abc", "def"))
    with holding(ai.UNIT, settings=settings) as h:
        r = await h.run("// @ai true\nreturn streamText({ prompt: 'x' }).toTextStreamResponse();")
        assert r.stream is not None
        got = []
        with pytest.raises(ScriptError, match="received more than 10 bytes from the AI provider"):
            async for chunk in r.stream:
                got.append(chunk)
    assert got == [b"0123456"]


async def test_a_provider_breaking_off_mid_answer_fails_the_stream_with_a_message(
    provider: OpenAIServer
) -> None:
    settings = settings_for_tests(memory_limit=32 * 1024 * 1024, ai_base_url=provider.base_url,
                                  ai_model="m")
    why = "AI call failed: the connection to the AI provider broke off mid-answer"
    with holding(ai.UNIT, streams.UNIT, settings=settings) as h:
        provider.reply("a b", chunks=("a ", "b"), drop=True)
        r = await h.run("// @ai true\nreturn streamText({ prompt: 'x' }).toTextStreamResponse();")
        assert r.stream is not None
        got = []
        with pytest.raises(ScriptError, match=why):
            async for chunk in r.stream:
                got.append(chunk)
        assert got == [b"a ", b"b"]
        provider.reply("a b", chunks=("a ", "b"), drop=True)
        r = await h.run("// @ai true\nconst got = [];\n"
                        "try { for await (const t of streamText({ prompt: 'x' }).textStream) "
                        "got.push(t); }\n"
                        "catch (e) { return { got, error: e.message }; }")
    assert json.loads(r.body) == {"got": ["a ", "b"], "error": why}


async def test_a_script_reading_its_text_stream_reads_it_as_a_readable_stream_would(
    provider: OpenAIServer
) -> None:
    settings = settings_for_tests(memory_limit=32 * 1024 * 1024, ai_base_url=provider.base_url,
                                  ai_model="m")
    with holding(ai.UNIT, streams.UNIT, settings=settings) as h:
        provider.reply("a b c", chunks=("a ", "b ", "c"))
        r = await h.run("// @ai true\nconst s = streamText({ prompt: 'x' }).textStream;\n"
                        "const got = [];\nfor await (const t of s) got.push(t);\n"
                        "const again = [];\nfor await (const t of s) again.push(t);\n"
                        "return { got, again, locked: s.locked };")
        assert json.loads(r.body) == {"got": ["a ", "b ", "c"], "again": [], "locked": False}
        # leaving the loop early cancels the stream, and the provider's stream with it
        cut = provider.cut
        provider.reply("a b c", chunks=("a ", "b ", "c"), delay_s=0.3)
        r = await h.run("// @ai true\nconst s = streamText({ prompt: 'x' }).textStream;\n"
                        "for await (const t of s) break;\n"
                        "return { locked: s.locked };")
        assert json.loads(r.body) == {"locked": False}
        deadline = time.monotonic() + 5
        while provider.cut == cut and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    assert provider.cut == cut + 1


async def test_streamed_calls_reuse_the_providers_connection(provider: OpenAIServer) -> None:
    # each read to its end (a new connection would cost the next call a connect, and a real
    # provider's TLS handshake, before its first token)
    settings = settings_for_tests(memory_limit=32 * 1024 * 1024, ai_base_url=provider.base_url,
                                  ai_model="m")
    calls = provider.calls
    with holding(ai.UNIT, streams.UNIT, settings=settings) as h:
        for source in ("return streamText({ prompt: 'x' }).toTextStreamResponse();",
                       "return await streamText({ prompt: 'x' }).text;",
                       "return streamText({ prompt: 'x' }).toTextStreamResponse();"):
            provider.reply("a b", chunks=("a ", "b"))
            r = await h.run("// @ai true\n" + source)
            if r.stream is not None:
                assert b"".join([chunk async for chunk in r.stream]) == b"a b"
    peers = {sent["peer"] for sent in provider.requests[calls:]}
    assert provider.calls == calls + 3 and len(peers) == 1, peers


async def test_a_returned_text_stream_still_settles_text_usage_and_finish_reason(
    provider: OpenAIServer
) -> None:
    # the worker keeps the result: a later request reads what the streamed answer carried
    settings = settings_for_tests(memory_limit=32 * 1024 * 1024, ai_base_url=provider.base_url,
                                  ai_model="m")
    provider.reply("x y z")
    with holding(ai.UNIT, settings=settings) as h:
        script = h.sandbox.compiler.compile_source(
            "// @ai true\n// @mode worker\nlet last;\n"
            "export default async (req) => {\n"
            "  if (req.query.read) return { text: await last.text, usage: await last.usage,\n"
            "    finishReason: await last.finishReason };\n"
            "  last = streamText({ prompt: 'x' });\n"
            "  return last.toTextStreamResponse();\n"
            "};", "kept.ts")
        r = await h.sandbox.invoke(script, Invocation("GET", "/kept"))
        assert r.stream is not None
        assert b"".join([chunk async for chunk in r.stream]) == b"x y z"
        r = await h.sandbox.invoke(script, Invocation("GET", "/kept", query={"read": "1"}))
    assert json.loads(r.body) == {"text": "x y z", "finishReason": "stop", "usage": {
        "promptTokens": 7, "completionTokens": 3, "totalTokens": 10,
        "inputTokens": 7, "outputTokens": 3}}


async def test_a_streamed_answer_waits_for_a_client_that_does_not_read(
    provider: OpenAIServer
) -> None:
    settings = settings_for_tests(memory_limit=32 * 1024 * 1024, ai_base_url=provider.base_url,
                                  ai_model="m")
    chunks = tuple(f"{i:03}".ljust(16 * 1024, ".") for i in range(40))
    provider.reply("".join(chunks), chunks=chunks)
    with holding(ai.UNIT, settings=settings) as h:
        r = await h.run("// @ai true\nreturn streamText({ prompt: 'x' }).toTextStreamResponse();")
        assert r.stream is not None
        deadline = time.monotonic() + 10
        while len(provider.sent_at) < len(chunks) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # the provider sent all 640 KiB; the host holds 256 of it
        assert STREAM_BUFFER_BYTES <= r.stream.buffered <= STREAM_BUFFER_BYTES + 16 * 1024
        body = b"".join([chunk async for chunk in r.stream])
    assert body == "".join(chunks).encode()


@pytest.mark.parametrize("chunks", [
    [b"data: 1\n\ndata: 2\n", b"\n"],
    [b"data: 1\r\n\r\ndata: 2\r\n\r\n"],
    [b"data: 1\r", b"\n\r", b"\ndata: 2\r", b"\r"],
    [b"da", b"ta: 1\n", b"\nd", b"ata: 2", b"\n\n"],
])
async def test_event_lines_end_at_cr_lf_lf_or_cr_wherever_the_network_cuts_them(
    chunks: list[bytes]
) -> None:
    async def arriving() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    assert [line async for line in ai._lines(arriving())] == [b"data: 1", b"", b"data: 2", b""]
