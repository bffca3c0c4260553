"""The timers unit: setTimeout and friends wait on the host's timer heap, and only where it is held."""

from __future__ import annotations

import json

import pytest

from runtime.host import crypto, timers
from runtime.sandbox import ScriptError
from tests.host.harness import holding

SLEEP = "await new Promise((r) => setTimeout(r, 5));\nreturn { slept: true };"


async def test_a_timer_waits_on_a_sandbox_holding_only_timers() -> None:
    with holding(timers.UNIT) as h:
        for mode in ("serverless", "worker"):
            assert json.loads((await h.run(SLEEP, mode=mode)).body) == {"slept": True}


async def test_a_sandbox_without_timers_refuses_set_timeout_naming_the_unit() -> None:
    with holding(crypto.UNIT) as h, pytest.raises(ScriptError) as caught:
        await h.run(SLEEP)
    assert caught.value.name == "TypeError"
    assert caught.value.message == (
        "host operation 'timers.sleep' refused: this sandbox does not hold the timers unit "
        "(every script may use timers where the timers unit is held)"
    )


async def test_a_timer_not_granted_is_refused_naming_the_op_and_what_grants_it() -> None:
    with holding(timers.UNIT) as h, pytest.raises(ScriptError) as caught:
        await h.run(SLEEP, grants={"response": True})
    assert caught.value.message == (
        "host operation timers.sleep refused: this script is not granted timers "
        "(every script may use timers where the timers unit is held)"
    )


def test_sleep_takes_milliseconds_and_never_waits_less_than_nothing() -> None:
    assert timers.sleep({"ms": 250}) == 0.25
    assert timers.sleep({"ms": -5}) == 0.0
    assert timers.sleep({}) == 0.0
