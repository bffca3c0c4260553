"""Built-in AI: ``generateText``, ``streamText``, ``generateObject`` and ``openai.chat`` for
scripts with ``// @ai true``, answered by any OpenAI-compatible endpoint the operator names.

The host makes every provider call itself, with the ``openai`` package's ``AsyncOpenAI`` (one
client per endpoint and key, per process), on the event loop; the key never enters the
sandbox, the request log or an error. What a call may cost is bounded here: calls and
received bytes and tokens per request, calls in flight per tenant, and the time left to the
request. A script's defaults come from its magic comments (``@ai-model``,
``@ai-temperature``, ``@ai-max-tokens``, ``@ai-key``) and its system prompt from the nearest
``<script>.system.md`` or ``_system.md`` up to its tenant's root, read confined to that root.
``generateObject``'s answer is parsed and checked against the script's JSON Schema here, so a
script never receives an object its schema refuses.
"""

from __future__ import annotations

import asyncio
import json
import posixpath
import time
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from runtime.catalog.confine import read_inside
from runtime.host import HostError, OpContext, Unit
from runtime.host.response import STREAM_BUFFER_BYTES
from runtime.host.streams import open_stream

if TYPE_CHECKING:
    import httpx2
    from openai import AsyncOpenAI

    from runtime.compiler.magic import MagicComments
    from runtime.config import Settings
    from runtime.sandbox.types import BodyStream

PARAMS = ("temperature", "max_tokens", "max_completion_tokens", "top_p", "stop", "seed", "presence_penalty",
          "frequency_penalty", "response_format", "tools", "tool_choice", "n", "user")
"""What a script may set on a completion beyond model and messages; the rest is refused, so a
script cannot reach provider features the operator did not mean to offer."""


class AISettings(BaseSettings):
    """The provider and the caps (``runtime.config.Settings`` inherits this section)."""

    ai_base_url: str | None = Field(
        None, description="An OpenAI-compatible endpoint (…/v1) for scripts with @ai true.",
    )
    ai_api_key: SecretStr | None = Field(
        None, description="Its key; never visible to scripts or in logs. A script's @ai-key "
        "replaces it for that script.",
    )
    ai_model: str | None = Field(None, description="Model used when a script names none.")
    ai_max_calls: int = Field(
        50, ge=1, description="AI calls one request may make; past it the call rejects.",
    )
    ai_max_output_bytes: int = Field(
        4 * 1024 * 1024, ge=1, description="Text one request may receive from the provider "
        "in all its AI calls, streamed or not; past it the call fails.",
    )
    ai_max_output_tokens: int = Field(
        100_000, ge=1, description="Completion tokens one request may receive in all its AI "
        "calls (as the provider counts them; streamed deltas when it does not).",
    )
    tenant_ai_calls: int = Field(
        32, ge=1, description="AI calls one tenant's requests may have in flight at once, per "
        "server process.",
    )


@dataclass(frozen=True, slots=True)
class Provider:
    """What a tenant's AI calls go to and how far they may go (``configure``)."""

    base_url: str | None
    api_key: str | None = field(repr=False)
    model: str | None
    root: Path
    max_calls: int
    max_bytes: int
    max_tokens: int
    tenant_calls: int


@dataclass(frozen=True, slots=True)
class Grant:
    """One script version's AI: its tenant's provider and its own magic-comment defaults."""

    provider: Provider
    model: str | None
    temperature: float | None
    max_tokens: int | None
    api_key: str | None = field(repr=False)


@dataclass(slots=True)
class Spent:
    """What one request has taken of the provider so far."""

    calls: int = 0
    bytes: int = 0
    tokens: int = 0


class AIError(HostError):
    """A provider call that failed or was refused; the script sees its message."""

    js_name = "AIError"


class NoObjectGenerated(HostError):
    """``generateObject``'s answer was not JSON or broke the schema (the AI SDK's name)."""

    js_name = "NoObjectGeneratedError"


def configure(settings: Settings, tenant: str) -> Provider:
    from runtime.catalog.tenants import root_of

    assert isinstance(settings, AISettings)
    key = settings.ai_api_key.get_secret_value() if settings.ai_api_key is not None else None
    return Provider(settings.ai_base_url, key, settings.ai_model, root_of(settings, tenant),
                    settings.ai_max_calls, settings.ai_max_output_bytes,
                    settings.ai_max_output_tokens, settings.tenant_ai_calls)


def grant(provider: Provider, magic: MagicComments) -> Grant | None:
    if not magic.ai:
        return None
    key = magic.ai_key.get_secret_value() if magic.ai_key is not None else None
    return Grant(provider, magic.ai_model, magic.ai_temperature, magic.ai_max_tokens, key)


# -- the provider's clients, and who is calling it -------------------------------------------

_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str | None, str], AsyncOpenAI]
] = weakref.WeakKeyDictionary()
"""Per event loop (a server process has one), per endpoint and key: a client's connections
belong to the loop that opened them."""
_in_flight: dict[str, int] = {}  # tenant -> its AI calls in flight (this process)


def provider_key(g: Grant) -> str | None:
    """The key the grant's calls send; refuses when no provider is configured at all."""
    key = g.api_key or g.provider.api_key
    if not g.provider.base_url and not key:
        raise AIError(
            "AI call refused: no AI provider is configured on this server; set WEXEC_AI_BASE_URL "
            "to an OpenAI-compatible endpoint (and WEXEC_AI_API_KEY to its key)"
        )
    return key


def client_for(g: Grant) -> AsyncOpenAI:
    """The client for the grant's endpoint and key on this loop (made on first use)."""
    p = g.provider
    key = provider_key(g)
    ident = (p.base_url, key or "")
    clients = _clients.setdefault(asyncio.get_running_loop(), {})
    client = clients.get(ident)
    if client is None:
        from openai import AsyncOpenAI

        # retries would spend the request's time without telling the script; the script decides
        client = clients[ident] = AsyncOpenAI(
            base_url=p.base_url or None, api_key=key or "unused", max_retries=0
        )
    return client


class Call:
    """One provider call of one request: counted against its caps from start to end."""

    def __init__(self, ctx: OpContext) -> None:
        self.grant: Grant = ctx.grants["ai"]
        self.spent: Spent = ctx.state["ai"]
        self.tenant = ctx.tenant
        self.ctx = ctx
        p = self.grant.provider
        if self.spent.calls >= p.max_calls:
            raise AIError(f"AI call refused: this request already made {self.spent.calls} AI "
                          f"calls; the cap is {p.max_calls} per request (WEXEC_AI_MAX_CALLS)")
        if _in_flight.get(self.tenant, 0) >= p.tenant_calls:
            raise AIError(f"AI call refused: this tenant already has {p.tenant_calls} AI calls "
                          "in flight, the cap per tenant (WEXEC_TENANT_AI_CALLS)")
        self.client = client_for(self.grant)
        self.spent.calls += 1
        _in_flight[self.tenant] = _in_flight.get(self.tenant, 0) + 1
        self._open = True

    def close(self) -> None:
        if self._open:
            self._open = False
            _in_flight[self.tenant] -= 1

    def timeout(self) -> float | None:
        """Seconds the call may take: what is left of the request."""
        deadline = self.ctx.deadline
        if deadline is None:
            return None
        left = deadline - time.monotonic()
        if left <= 0:
            raise AIError("AI call refused: the request has no time left")
        return left

    def received(self, text: str, tokens: int) -> None:
        """Count what the provider sent; past a cap the call fails."""
        spent, p = self.spent, self.grant.provider
        spent.bytes += len(text.encode("utf-8"))
        spent.tokens += tokens
        if spent.bytes > p.max_bytes:
            raise AIError(f"AI call stopped: this request received more than {p.max_bytes} bytes "
                          "from the AI provider (WEXEC_AI_MAX_OUTPUT_BYTES)")
        if spent.tokens > p.max_tokens:
            raise AIError(f"AI call stopped: this request received more than {p.max_tokens} "
                          "completion tokens (WEXEC_AI_MAX_OUTPUT_TOKENS)")


async def body_of(
    args: dict[str, Any], ctx: OpContext, instruction: str | None = None
) -> dict[str, Any]:
    """The completion request for ``args`` (``ai.chat``'s), with the script's defaults: its
    model and options, its ``system`` or else its system file, and the host's ``instruction``
    last."""
    g: Grant = ctx.grants["ai"]
    provider_key(g)
    model = args.get("model") or g.model or g.provider.model
    if not isinstance(model, str):
        raise AIError("AI call refused: no model named; pass model, write // @ai-model "
                      "provider/name in the script, or set WEXEC_AI_MODEL on the server")
    messages = args.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TypeError("an AI call needs prompt or messages (a non-empty array of "
                        "{role, content})")
    options = args.get("options") or {}
    if not isinstance(options, dict):
        raise TypeError("AI call options must be an object")
    unknown = sorted(set(options) - set(PARAMS))
    if unknown:
        raise TypeError(f"AI call refused: {unknown[0]!r} is not a parameter scripts may set "
                        f"(they may set {', '.join(PARAMS)})")
    body: dict[str, Any] = {k: v for k, v in options.items() if v is not None}
    if "temperature" not in body and g.temperature is not None:
        body["temperature"] = g.temperature
    if "max_tokens" not in body and g.max_tokens is not None:
        body["max_tokens"] = g.max_tokens
    system = args.get("system")
    if system is None and not any(isinstance(m, dict) and m.get("role") == "system"
                                  for m in messages):
        system = await asyncio.to_thread(system_prompt, g.provider.root, ctx.script)
    if system is not None:
        messages = [{"role": "system", "content": str(system)}, *messages]
    if instruction is not None:
        messages = [*messages, {"role": "system", "content": instruction}]
    return {"model": model, "messages": messages, **body}


def system_prompt(root: Path, script: str) -> str | None:
    """The nearest of ``<script>.system.md``, then ``_system.md`` in its folder and each folder
    above it up to the tenant's ``root``; read confined to that root."""
    stem, _ = posixpath.splitext(script)
    folder = posixpath.dirname(script)
    candidates = [stem + ".system.md"]
    while True:
        candidates.append(posixpath.join(folder, "_system.md"))
        if not folder:
            break
        folder = posixpath.dirname(folder)
    for rel in candidates:
        try:
            data, _ = read_inside(root, rel)
        except FileNotFoundError:
            continue
        except OSError:  # a folder, a link out of the root: not a prompt this script may use
            continue
        return data.decode("utf-8", "replace")
    return None


async def chat(args: dict[str, Any], ctx: OpContext) -> dict[str, Any]:
    """``ai.chat {model?, messages, options?}`` → the provider's completion, as JSON."""
    return await complete(await body_of(args, ctx), ctx)


async def complete(body: dict[str, Any], ctx: OpContext) -> dict[str, Any]:
    """One non-streamed completion of ``body``, counted against the caps."""
    call = Call(ctx)
    try:
        response = await _post(call, body, stream=False)
    finally:
        call.close()
    try:
        out = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        out = None
    choices = out.get("choices") if isinstance(out, dict) else None
    if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
        raise AIError("AI call failed: the AI provider's answer is not a chat completion: "
                      f"{response.text[:80]!r}")
    out = _without_none(out)
    messages = [c.get("message") for c in out["choices"]]
    text = "".join(str(m.get("content") or "") for m in messages if isinstance(m, dict))
    usage = out.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    call.received(text, tokens if isinstance(tokens, int) else 0)
    return out


async def _post(call: Call, body: dict[str, Any], *, stream: bool) -> httpx2.Response:
    """Send the chat completion ``body`` as it is, with the SDK's own ``post`` (its documented
    way to do so), not ``chat.completions.create``: the body is plain JSON already, which
    create's typed transform would walk again, and the answer is parsed once here, with orjson,
    not built into typed models first (together ~1 ms of the event loop's CPU per call)."""
    import httpx2  # the SDK's HTTP client: imported with it, on first use, not at start-up
    from openai import OpenAIError

    try:
        return await call.client.post(
            "/chat/completions", body=body, cast_to=httpx2.Response, stream=stream,
            options={"timeout": call.timeout()},
        )
    except OpenAIError as exc:
        raise provider_error(exc, call.client.api_key) from None


async def stream(args: dict[str, Any], ctx: OpContext) -> dict[str, Any]:
    """``ai.stream {model?, messages, options?, pipe?}`` → ``{handle, head}``: the provider's
    chunks as JSON lines, ``head`` up to the first that carries text, the rest in a host stream
    read as the script reads (``runtime.host.streams``), nothing read ahead of it.

    Settles with the first token: a refusal rejects here, and the first token reaches the
    script with the answer rather than one more read later. With ``pipe: true`` (a text stream
    the script returned as its response untouched) the text goes to the request's response
    instead, and the op settles at the end of the stream (``_pipe``).
    """
    import httpx2
    from openai import OpenAIError

    target = ctx.stream
    if args.get("pipe") is True and target is None:
        raise TypeError("ai.stream pipes its text to a streamed response; this request has none")
    body = {**await body_of(args, ctx), "stream": True, "stream_options": {"include_usage": True}}
    call = Call(ctx)
    try:
        response = await _post(call, body, stream=True)
    except BaseException:
        call.close()
        raise
    content = response.aiter_bytes()
    chunks = _events(_lines(content), call.client.api_key)
    failures = (OpenAIError, httpx2.HTTPError)  # what reading the body may raise

    if args.get("pipe") is True:
        assert target is not None
        ended = False
        try:
            summary = await _pipe(chunks, call, target)
            ended = True
            return summary
        except failures as exc:
            raise provider_error(exc, call.client.api_key) from None
        finally:
            call.close()
            await _close(response, content, ended)

    async def lines() -> AsyncGenerator[tuple[bytes, bool], None]:
        ended = False
        try:
            async for chunk in chunks:
                text = "".join((c.get("delta") or {}).get("content") or ""
                               for c in chunk.get("choices") or ())
                call.received(text, 1 if text else 0)
                yield orjson.dumps(_without_none(chunk)) + b"\n", bool(text)
            ended = True
        except failures as exc:
            raise provider_error(exc, call.client.api_key) from None
        finally:
            call.close()
            await _close(response, content, ended)

    source = lines()
    head = []
    try:
        async for line, has_text in source:
            head.append(line)
            if has_text:
                break
    except BaseException:
        await source.aclose()
        raise

    async def rest() -> AsyncIterator[bytes]:
        try:
            async for line, _ in source:
                yield line
        finally:
            await source.aclose()

    tail = rest()
    try:
        handle = open_stream(ctx, tail)
    except BaseException:  # past the cap on open streams: the call ends here
        await source.aclose()
        raise
    return {"handle": handle, "head": b"".join(head).decode()}


DRAIN_S = 0.1
"""How long a stream that ended with ``[DONE]`` may take to end its body before it is closed."""


async def _close(response: httpx2.Response, content: AsyncIterator[bytes], ended: bool) -> None:
    """Let the provider's streamed answer go. One that ended as it should (``[DONE]``) is read
    to the end of its body first, for at most ``DRAIN_S``: HTTP/1.1 gives a connection back to
    the client's pool only once its answer was read whole, and a new connection per call costs
    a connect and, to a real provider, a TLS handshake before the next call's first token."""
    import httpx2

    if ended and response.http_version == "HTTP/1.1":
        try:
            async with asyncio.timeout(DRAIN_S):
                async for _ in content:
                    pass
        except (TimeoutError, httpx2.HTTPError):
            pass  # the answer was whole already: only the connection is lost
    await response.aclose()


async def _pipe(
    chunks: AsyncIterator[dict[str, Any]], call: Call, target: BodyStream
) -> dict[str, Any]:
    """Feed the text of the provider's ``chunks`` (its first choice's, as ``textStream`` yields
    it) to the response ``target`` as it comes, paced by its client as ``response.drain`` paces a
    script; → ``{text, usage, finishReason}`` once the provider has sent everything."""
    text: list[str] = []
    usage = finish = None
    async for chunk in chunks:
        choices = chunk.get("choices") or ()
        first = choices[0] if choices and isinstance(choices[0], dict) else {}
        delta = (first.get("delta") or {}).get("content") or ""
        received = "".join((c.get("delta") or {}).get("content") or "" for c in choices)
        call.received(received, 1 if received else 0)
        usage = chunk.get("usage") or usage
        finish = first.get("finish_reason") or finish
        if delta:
            text.append(delta)
            target.feed(delta.encode())
            if target.buffered > STREAM_BUFFER_BYTES:
                await target.drained(STREAM_BUFFER_BYTES)
            else:  # its consumer sends it on before the next chunk is read, not after
                await asyncio.sleep(0)
    return _without_none({"text": "".join(text), "usage": usage, "finishReason": finish})


async def generate_object(args: dict[str, Any], ctx: OpContext) -> dict[str, Any]:
    """``ai.object {model?, messages, schema, options?}`` → ``{object, usage}``, the object
    checked against ``schema`` (JSON Schema) before the script sees it."""
    from jsonschema import SchemaError, validators

    schema = args.get("schema")
    if not isinstance(schema, dict):
        raise TypeError("generateObject needs schema: a JSON Schema object")
    checker = validators.validator_for(schema)
    try:
        checker.check_schema(schema)
    except SchemaError as exc:
        raise TypeError(f"generateObject: schema is not a valid JSON Schema: {exc.message}") from None
    instruction = ("Answer with one JSON value and nothing else, matching this JSON Schema:\n"
                   + json.dumps(schema))
    options = {"response_format": {"type": "json_object"}, **(args.get("options") or {})}
    completion = await complete(await body_of({**args, "options": options}, ctx, instruction), ctx)
    text = completion["choices"][0]["message"].get("content") or ""
    try:
        value = json.loads(strip_fence(text))
    except ValueError as exc:
        raise NoObjectGenerated(f"generateObject: the model's answer is not JSON ({exc}); it "
                                f"began {text[:80]!r}") from None
    problems = sorted(checker(schema).iter_errors(value), key=lambda e: list(e.path))
    if problems:
        first = problems[0]
        at = "/" + "/".join(str(p) for p in first.path)
        raise NoObjectGenerated(f"generateObject: the model's answer does not match the schema: "
                                f"at {at}: {first.message}")
    return {"object": value, "usage": completion.get("usage"),
            "finishReason": completion["choices"][0].get("finish_reason")}


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The lines of a server-sent event stream's bytes, each ended by CR LF, LF or CR (the
    SDK's ``iter_lines`` decodes text and looks up the charset on the way, which cost a
    stream's first token as much as everything the host does after)."""
    rest = b""
    after_cr = False  # the last chunk ended with CR: an LF opening the next belongs to it
    async for data in chunks:
        if after_cr and data.startswith(b"\n"):
            data = data[1:]
        if rest:
            data, rest = rest + data, b""
        after_cr = data.endswith(b"\r")
        lines = data.splitlines(keepends=True)
        if lines and not lines[-1].endswith((b"\n", b"\r")):
            rest = lines.pop()
        for line in lines:
            yield line.rstrip(b"\r\n")
    if rest:
        yield rest


async def _events(lines: AsyncIterator[bytes], key: str) -> AsyncIterator[dict[str, Any]]:
    """A provider's stream of server-sent events as the chunks they carry, each parsed once
    here: the SDK's typed models cost more per chunk than everything else on the way to the
    script, and the script gets JSON again anyway. An ``error`` event fails the call (``key``
    taken out of its message, as ``provider_error`` does)."""
    data: list[bytes] = []
    async for line in lines:
        if line:
            if line.startswith(b"data:"):
                data.append(line[6:] if line.startswith(b"data: ") else line[5:])
            continue
        if not data:
            continue
        text, data = b"\n".join(data), []
        if text.startswith(b"[DONE]"):
            return
        try:
            chunk = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise AIError(f"AI call failed: the AI provider sent a chunk that is not JSON: "
                          f"{text[:80].decode('utf-8', 'replace')!r}") from None
        if not isinstance(chunk, dict):
            continue
        err = chunk.get("error")
        if err:
            message = str(err.get("message") if isinstance(err, dict) else err)[:500]
            raise AIError("AI call failed: the AI provider sent an error: "
                          + (message.replace(key, "[key]") if key else message))
        yield chunk


def _without_none(value: Any) -> Any:
    """``value`` without the keys whose value is null, at any depth (what the script's chunks
    have always looked like: the SDK's ``exclude_none``)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def strip_fence(text: str) -> str:
    """The JSON inside a Markdown code fence, as models often wrap it; other text as it is."""
    s = text.strip()
    if s.startswith("```") and s.endswith("```"):
        s = s[3:-3]
        s = s.split("\n", 1)[1] if "\n" in s else s
    return s.strip()


def provider_error(exc: Exception, key: str) -> AIError:
    """The provider's failure as the script sees it: its status and message, the ``key`` taken
    out of the message should the provider quote it."""
    import httpx2
    from openai import APIConnectionError, APIStatusError, APITimeoutError

    if isinstance(exc, (APITimeoutError, httpx2.TimeoutException)):
        return AIError("AI call failed: the AI provider did not answer within the request's "
                       "remaining time")
    if isinstance(exc, APIConnectionError):
        return AIError("AI call failed: the AI provider cannot be reached (WEXEC_AI_BASE_URL)")
    if isinstance(exc, APIStatusError):
        message = _message_of(exc).replace(key, "[key]") if key else _message_of(exc)
        return AIError(f"AI call failed: the AI provider answered {exc.status_code}: {message}")
    if isinstance(exc, httpx2.HTTPError):
        return AIError("AI call failed: the connection to the AI provider broke off mid-answer")
    return AIError(f"AI call failed: {type(exc).__name__}")


def _message_of(exc: Any) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])[:500]
    return str(exc.message)[:500]


UNIT = Unit(
    name="ai",
    granted_by="// @ai true in the script, and WEXEC_AI_BASE_URL on the server",
    ops={"chat": chat, "stream": stream, "object": generate_object},
    settings=AISettings,
    configure=configure,
    grant=grant,
    request_state=Spent,
)
