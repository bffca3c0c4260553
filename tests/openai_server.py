"""A small OpenAI-compatible HTTP server that tests start: real HTTP, real SSE, scripted answers.

It answers ``POST /v1/chat/completions`` as the provider would, plain or streamed (``stream:
true``: one ``chat.completion.chunk`` event per scripted chunk, ``delay_s`` apart, then
``[DONE]``), and keeps every request it got (``requests``, each with the client's port as
``peer``: which connection it came on) and when it sent each streamed chunk
(``sent_at``, ``time.monotonic()``: the clock every process of the machine shares), and how
many streams were cut before their end (``cut``: the client went away, or the reply was
scripted to ``drop``), so tests assert what the host sent and measure what the client saw. Replies are scripted in order with
``reply``; with none scripted it answers ``echo: <the last message>``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support import free_port


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer: its text, how it is cut when streamed, the pause between chunks."""

    content: str
    chunks: tuple[str, ...] = ()
    delay_s: float = 0.0
    status: int = 200
    prompt_tokens: int = 7
    drop: bool = False  # streamed: the connection breaks off after the chunks, before the end
    raw: bytes | None = None  # not streamed: this body, as it is, instead of a completion

    def parts(self) -> tuple[str, ...]:
        if self.chunks:
            return self.chunks
        words = self.content.split(" ")
        return tuple(w if i == len(words) - 1 else w + " " for i, w in enumerate(words))


class OpenAIServer:
    """The server's state: scripted replies, the requests it got, when it sent stream chunks."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.sent_at: list[float] = []
        self.cut = 0
        self._replies: deque[Reply] = deque()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"])])

    def reply(self, content: str, *, chunks: tuple[str, ...] = (), delay_s: float = 0.0,
              status: int = 200, drop: bool = False, raw: bytes | None = None) -> None:
        """Script the next answer (answers are taken in the order scripted)."""
        self._replies.append(Reply(content, chunks, delay_s, status, drop=drop, raw=raw))

    @property
    def calls(self) -> int:
        return len(self.requests)

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        peer = request.client.port if request.client is not None else None  # its connection
        self.requests.append({**body, "authorization": request.headers.get("authorization"),
                              "peer": peer})
        if self._replies:
            reply = self._replies.popleft()
        else:
            last = body["messages"][-1]["content"] if body.get("messages") else ""
            reply = Reply(f"echo: {last}")
        if reply.status != 200:
            return JSONResponse({"error": {"message": reply.content, "type": "invalid_request_error"}},
                                status_code=reply.status)
        model = body.get("model", "")
        usage = {"prompt_tokens": reply.prompt_tokens, "completion_tokens": len(reply.parts()),
                 "total_tokens": reply.prompt_tokens + len(reply.parts())}
        if reply.raw is not None:
            return Response(reply.raw, media_type="application/json")
        if not body.get("stream"):
            return JSONResponse({
                "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
                "model": model, "usage": usage,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": reply.content}}],
            })
        return StreamingResponse(self._events(reply, model, usage), media_type="text/event-stream")

    async def _events(self, reply: Reply, model: str, usage: dict[str, int]) -> AsyncIterator[bytes]:
        self.sent_at = []
        head = {"id": "chatcmpl-test", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model}
        ended = False
        try:
            for i, part in enumerate(reply.parts()):
                if i and reply.delay_s:
                    await asyncio.sleep(reply.delay_s)
                delta = {"content": part} if i else {"role": "assistant", "content": part}
                event = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                self.sent_at.append(time.monotonic())
                yield f"data: {json.dumps(event)}\n\n".encode()
            if reply.drop:  # the server aborts the connection of a response that fails mid-way
                raise ConnectionAbortedError("this reply was scripted to break off here")
            last = {**head, "usage": usage,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            yield f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode()
            ended = True
        finally:
            if not ended:
                self.cut += 1


@contextmanager
def openai_server() -> Iterator[OpenAIServer]:
    """An ``OpenAIServer`` listening on a free port for the duration, on a thread of its own."""
    state = OpenAIServer()
    server = uvicorn.Server(uvicorn.Config(state.app, host="127.0.0.1", port=state.port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the local OpenAI-compatible server did not start")
        time.sleep(0.01)
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(timeout=5)
