"""Recycled linear memories: a reused memory must equal the snapshot image byte for byte."""

from __future__ import annotations

import ctypes
import json

import pytest

from runtime.sandbox import Invocation, Sandbox
from runtime.sandbox.instance import GuestInstance
from runtime.sandbox.memory import KEEP_RESIDENT, PAGE

# Dirties pages in the image (a long string interned into the heap, every global it can
# reach) and past it (a large typed array), well beyond the budget reset in place.
SCRIBBLE = f"""// @mode serverless
const big = new Uint8Array({4 * KEEP_RESIDENT});
big.fill(0xA5);
globalThis.secret = 'tenant-a-' + 'x'.repeat(50000);
for (const k of Object.getOwnPropertyNames(globalThis)) {{ try {{ globalThis[k].__scribbled = 1; }} catch {{}} }}
return {{ n: big.length }};
"""


def _expected(sandbox: Sandbox, size: int) -> bytes:
    memories = sandbox.engine.memories
    image = ctypes.string_at(memories.image_addr, memories.image_len)
    return image + bytes(size - len(image))


def _spare_memories(sandbox: Sandbox) -> list[tuple[int, int]]:
    return sandbox.engine.memories.spare()


@pytest.fixture()
def recycling(sandbox: Sandbox) -> Sandbox:
    if not sandbox.engine.memories.recycles:
        pytest.skip("this kernel has no PAGEMAP_SCAN: memories are unmapped, not reused")
    return sandbox


def test_reused_memory_equals_the_image(recycling: Sandbox) -> None:
    sandbox = recycling
    scribble = sandbox.compiler.compile_source(SCRIBBLE, "scribble.ts")
    probe = sandbox.compiler.compile_source(
        "// @mode serverless\nreturn { secret: typeof globalThis.secret, mark: typeof Object.__scribbled };",
        "probe.ts",
    )
    result = sandbox.run_sync(scribble, Invocation("GET", "/"))
    assert json.loads(result.body) == {"n": 4 * KEEP_RESIDENT}
    spare = _spare_memories(sandbox)
    assert spare, "a serverless memory that did not grow is kept for reuse"
    for base, size in spare:
        assert ctypes.string_at(base, size) == _expected(sandbox, size)
    # and the next instance, on a reused memory, sees nothing of it
    assert json.loads(sandbox.run_sync(probe, Invocation("GET", "/")).body) == {
        "secret": "undefined",
        "mark": "undefined",
    }


# A top level that grows memory well past the snapshot's (its image starts memories there).
GROWN_TOP = "const table = Array.from({ length: 100000 }, (_, i) => ({ i, s: 'row' + i }));\n"


@pytest.mark.parametrize("top", ["", GROWN_TOP], ids=["small top level", "grown top level"])
def test_memories_of_a_serverless_image_are_reset_to_it(recycling: Sandbox, top: str) -> None:
    sandbox = recycling
    body = SCRIBBLE.removeprefix("// @mode serverless\n")
    source = f"// @mode serverless\n{top}export default () => {{\n{body}}};\n"
    scribble = sandbox.compiler.compile_source(source, f"scribble-imaged{len(top)}.ts")
    sandbox.run_sync(scribble, Invocation("GET", "/"))  # its first run makes the image
    image = sandbox.images.lookup(scribble)[0]
    assert image is not None
    first = GuestInstance(sandbox.engine, sandbox.settings.memory_limit, image)
    first.start()  # a memory mapped afresh from the image: what every instance must start as
    address, size = first.memory()
    pristine = ctypes.string_at(address, size)
    first.close()
    for _ in range(3):
        assert json.loads(sandbox.run_sync(scribble, Invocation("GET", "/")).body) == {"n": 4 * KEEP_RESIDENT}
    spare = sandbox.engine.memories.spare(image)
    assert spare, "memories of an image are kept for reuse too"
    for base, length in spare:
        assert length == size and ctypes.string_at(base, length) == pristine
    assert (size > sandbox.engine.memory_bytes) == bool(top)


def test_grown_memory_is_shrunk_and_reused(recycling: Sandbox) -> None:
    sandbox = recycling
    grow = sandbox.compiler.compile_source(
        "// @mode serverless\nconst a = new Uint8Array(8 * 1024 * 1024); a.fill(7); return { ok: a.length };",
        "grow.ts",
    )
    assert json.loads(sandbox.run_sync(grow, Invocation("GET", "/")).body) == {"ok": 8 * 1024 * 1024}
    spare = _spare_memories(sandbox)
    assert spare
    for base, size in spare:
        assert size < 8 * 1024 * 1024
        assert ctypes.string_at(base, size) == _expected(sandbox, size)
    # the grown part is inaccessible again: the next instance grows it afresh, zeroed
    again = sandbox.compiler.compile_source(
        "// @mode serverless\nconst a = new Uint8Array(8 * 1024 * 1024);"
        " return { sum: a.reduce((x, y) => x + y, 0) };",
        "grow-again.ts",
    )
    assert json.loads(sandbox.run_sync(again, Invocation("GET", "/")).body) == {"sum": 0}


def test_pages_are_reported_at_page_granularity(recycling: Sandbox) -> None:
    memories = recycling.engine.memories
    buf = ctypes.create_string_buffer(8 * PAGE)
    start = (ctypes.addressof(buf) + PAGE - 1) // PAGE * PAGE
    ctypes.memset(start + PAGE, 1, 1)
    regions = memories.private_pages(start + PAGE, start + 2 * PAGE)
    assert regions == [start + PAGE, start + 2 * PAGE]


def test_without_pagemap_scan_memories_are_unmapped(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    memories = sandbox.engine.memories
    monkeypatch.setattr(memories, "recycles", False)
    before = memories.spare()
    hello = sandbox.compiler.compile_source("// @mode serverless\nreturn { ok: 1 };", "plain.ts")
    for _ in range(3):
        assert json.loads(sandbox.run_sync(hello, Invocation("GET", "/")).body) == {"ok": 1}
    assert len(memories.spare()) <= len(before)


async def test_memories_recycled_from_guest_threads_stay_exact(recycling: Sandbox) -> None:
    import asyncio

    sandbox = recycling
    # slower than the inline slice, so every request runs on the guest threads, two at a time
    src = ("// @mode serverless\nconst t = Date.now(); while (Date.now() - t < 8) {}\n"
           "globalThis.seen = (globalThis.seen || 0) + 1;\nconst junk = new Array(5000).fill(metadata.query.i);\n"
           "return { seen: globalThis.seen, i: metadata.query.i, n: junk.length };")
    slow = sandbox.compiler.compile_source(src, "threaded.ts")
    results = await asyncio.gather(*(
        sandbox.invoke(slow, Invocation("GET", "/", query={"i": str(i)}), timeout_ms=5_000) for i in range(12)
    ))
    assert [json.loads(r.body) for r in results] == [{"seen": 1, "i": str(i), "n": 5000} for i in range(12)]
    for base, size in _spare_memories(sandbox):
        assert ctypes.string_at(base, size) == _expected(sandbox, size)
