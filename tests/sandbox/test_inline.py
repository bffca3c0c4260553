"""The serverless request's first crossing, run inline on the event loop within a slice: when
the script's load uses the slice up, the request (which never started: the guest lists it as
skipped) is rerun on the guest threads, never left waiting for a crossing that will not come."""

from __future__ import annotations

import pytest

from runtime.sandbox import Sandbox, ScriptTimeout
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
