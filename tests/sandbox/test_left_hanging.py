"""Requests the sandbox must not leave hanging or leaking: the serverless request's first
crossing, run inline on the event loop within a slice (when the script's load uses the slice
up, the request, which never started, is rerun on the guest threads), and a worker evicted
while busy (its requests finish, then it closes)."""

from __future__ import annotations

import asyncio

import pytest

from runtime.sandbox import Invocation, Sandbox, ScriptTimeout
from runtime.sandbox.driver import Driver, SliceExceeded
from runtime.sandbox.envelope import FIRST_RID

SKIPPED = ({"skipped": [FIRST_RID]}, b"")  # what the guest answers when the load left no time


def _driver(sandbox: Sandbox) -> Driver:
    artefact = sandbox.compiler.compile_source("module.exports = () => 1;\n", "skipped.js")
    return sandbox._driver(Driver, artefact)


def test_a_request_the_load_left_no_slice_for_is_rerun_on_a_thread(sandbox: Sandbox) -> None:
    driver = _driver(sandbox)
    try:
        with pytest.raises(SliceExceeded):
            driver.take_over(SKIPPED, 1000, True, 5.0)
    finally:
        driver.close()


def test_a_request_the_load_left_no_time_for_times_out(sandbox: Sandbox) -> None:
    driver = _driver(sandbox)
    try:
        with pytest.raises(ScriptTimeout):
            driver.take_over(SKIPPED, 1000, True, None)
    finally:
        driver.close()


async def test_an_evicted_busy_worker_finishes_its_requests_then_closes(sandbox: Sandbox) -> None:
    src = "// @mode worker\nexport default async () => {\n" \
          "  await new Promise((r) => setTimeout(r, 100));\n  return 'old';\n};\n"
    artefact = sandbox.compiler.compile_source(src, "evicted-busy.js")
    running = asyncio.create_task(sandbox.invoke(artefact, Invocation("GET", "/")))
    await asyncio.sleep(0.05)  # the request waits on its timer
    driver = sandbox._workers[artefact.key]
    sandbox.evict(artefact.key)  # its script changed
    assert not driver.instance.closed
    assert (await running).body == b"old"
    for _ in range(50):
        if driver.instance.closed:
            break
        await asyncio.sleep(0.01)
    assert driver.instance.closed  # not left open, holding its memory
