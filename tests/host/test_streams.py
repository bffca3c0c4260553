"""Host streams: a unit's answer that arrives in pieces reaches the script as a ReadableStream,
one chunk per read and none ahead of it; a stream is closed when the script cancels it or its
request ends, and how many are open is capped per request and per tenant.

A unit made for the test (``drip``) opens streams from async generators the test watches.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from runtime.host import OpContext, Unit, always, timers
from runtime.host.streams import CHUNK_BYTES, open_stream
from runtime.sandbox import ScriptError
from tests.host.harness import holding
from tests.support import settings_for_tests

events: list[str] = []


async def _drip(n: int, size: int, fail: bool) -> AsyncIterator[bytes]:
    try:
        for i in range(n):
            events.append(f"made {i}")
            yield bytes([65 + i % 26]) * size
            await asyncio.sleep(0)
        if fail:
            raise RuntimeError("the upstream broke off")
    finally:
        events.append("closed")


async def open_drip(args: dict[str, Any], ctx: OpContext) -> int:
    return open_stream(ctx, _drip(int(args["n"]), int(args.get("size", 1)), bool(args.get("fail"))))


DRIP = Unit(name="drip", granted_by="tests", ops={"open": open_drip}, grant=always)

READ_ALL = """
const h = await __wexec.op('drip.open', { n: 3, size: 2 });
const out = [];
for await (const chunk of __wexec.stream(h)) out.push(new TextDecoder().decode(chunk));
return out;
"""


async def test_a_host_stream_reaches_the_script_chunk_by_chunk_and_closes_at_its_end() -> None:
    with holding(DRIP, timers.UNIT) as h:
        for mode in ("serverless", "worker"):
            events.clear()
            assert json.loads((await h.run(READ_ALL, mode=mode)).body) == ["AA", "BB", "CC"]
            assert events == ["made 0", "made 1", "made 2", "closed"], mode


async def test_nothing_is_read_ahead_of_the_script() -> None:
    src = """
const reader = __wexec.stream(await __wexec.op('drip.open', { n: 5 })).getReader();
const first = await reader.read();
await new Promise((r) => setTimeout(r, 20));
return { first: first.value.length };
"""
    with holding(DRIP, timers.UNIT) as h:
        events.clear()
        assert json.loads((await h.run(src)).body) == {"first": 1}
        await asyncio.sleep(0.05)
    assert events == ["made 0", "closed"]


async def test_a_stream_left_open_is_closed_when_its_request_ends() -> None:
    src = (
        "const r = __wexec.stream(await __wexec.op('drip.open', { n: 5 })).getReader();\n"
        "await r.read(); return 'left';"
    )
    with holding(DRIP, timers.UNIT) as h:
        for mode in ("serverless", "worker"):
            events.clear()
            assert (await h.run(src, mode=mode, tenant="c/1")).body == b"left"
            await asyncio.sleep(0.05)
            assert events == ["made 0", "closed"], mode
            assert h.sandbox.quotas.of("c/1").host_streams == 0


async def test_a_cancelled_stream_is_closed_at_once() -> None:
    src = """
const stream = __wexec.stream(await __wexec.op('drip.open', { n: 5 }));
const reader = stream.getReader();
await reader.read();
await reader.cancel('enough');
await new Promise((r) => setTimeout(r, 20));
return 'cancelled';
"""
    with holding(DRIP, timers.UNIT) as h:
        events.clear()
        assert (await h.run(src)).body == b"cancelled"
        assert events == ["made 0", "closed"]


async def test_a_large_chunk_is_read_in_pieces_and_an_error_rejects_the_read() -> None:
    src = f"""
const sizes = [];
try {{
  for await (const c of __wexec.stream(await __wexec.op('drip.open', {{ n: 1, size: {CHUNK_BYTES * 2 + 5}, fail: true }})))
    sizes.push(c.length);
}} catch (e) {{ sizes.push(e.message); }}
return sizes;
"""
    with holding(DRIP, timers.UNIT) as h:
        out = json.loads((await h.run(src)).body)
    assert out == [CHUNK_BYTES, CHUNK_BYTES, 5, "the upstream broke off"]


async def test_a_handle_the_request_does_not_hold_is_refused() -> None:
    src = "return await __wexec.op('streams.read', { handle: 7 });"
    with holding(DRIP, timers.UNIT) as h, pytest.raises(ScriptError) as caught:
        await h.run("await __wexec.op('drip.open', { n: 1 });\n" + src)
    assert caught.value.name == "TypeError"
    assert caught.value.message == "no open host stream 7 in this request (ended or cancelled)"


async def test_open_streams_are_capped_per_request_and_per_tenant() -> None:
    opens = "for (let i = 0; i < 3; i++) await __wexec.op('drip.open', { n: 1 });\nreturn 'ok';"
    settings = settings_for_tests(
        memory_limit=32 * 1024 * 1024, max_host_streams=2, tenant_max_host_streams=3
    )
    with holding(DRIP, timers.UNIT, settings=settings) as h:
        with pytest.raises(ScriptError) as per_request:
            await h.run(opens, tenant="a/1")
        assert per_request.value.name == "QuotaExceeded"
        assert "the cap is 2 per request (WEXEC_MAX_HOST_STREAMS)" in per_request.value.message
        two = (
            "for (let i = 0; i < 2; i++) await __wexec.op('drip.open', { n: 1 });\n"
            "await new Promise((r) => setTimeout(r, 100)); return 'ok';"
        )
        held = asyncio.ensure_future(h.run(two, tenant="b/1"))
        await asyncio.sleep(0.05)
        with pytest.raises(ScriptError) as per_tenant:
            await h.run(two, tenant="b/1")
        assert "the cap is 3 per tenant (WEXEC_TENANT_MAX_HOST_STREAMS)" in per_tenant.value.message
        assert (await held).body == b"ok"
        await asyncio.sleep(0.05)
        assert h.sandbox.quotas.of("b/1").host_streams == 0  # every stream closed and uncounted
        assert (await h.run(two, tenant="b/1")).body == b"ok"


async def _forever() -> AsyncIterator[bytes]:
    try:
        await asyncio.sleep(3600)
        yield b"never"
    finally:
        events.append("closed")


async def open_forever(args: dict[str, Any], ctx: OpContext) -> int:
    return open_stream(ctx, _forever())


async def test_cancelling_a_stream_ends_a_read_waiting_on_its_source() -> None:
    waits = Unit(name="waits", granted_by="tests", ops={"open": open_forever}, grant=always)
    src = """
const stream = __wexec.stream(await __wexec.op('waits.open', {}));
const reader = stream.getReader();
const read = reader.read();
await new Promise((r) => setTimeout(r, 20));
await __wexec.op('streams.cancel', { handle: 1 });
return await read;
"""
    with holding(waits, timers.UNIT) as h:
        events.clear()
        assert json.loads((await h.run(src)).body) == {"done": True}
        assert events == ["closed"]
