"""The registry: every name the guest sends is registered and every registered one is sent;
lookups refuse what is unknown, not held or not granted, saying what would grant it."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from runtime.compiler.magic import MagicComments
from runtime.config import REPO_ROOT, Settings
from runtime.host import Refused, Unit, crypto, timers
from runtime.host.quotas import QuotaExceeded
from runtime.host.registry import CORE, UNITS, Registry, answer, error_value
from runtime.http.policy import policy_for
from tests.support import settings_for_tests

GUEST = REPO_ROOT / "guest"
_QUOTED = re.compile(r"'([^']*)'")


def guest_names() -> tuple[set[str], set[str]]:
    """The call names (``hostCall('…'``) and op names (``listOp(rec, '…'``, ``op('…'``) the
    guest prelude sends, read from its source."""
    sources = [GUEST / "prelude.js", *sorted((GUEST / "prelude").glob("**/*.js"))]
    text = "\n".join(p.read_text() for p in sources if p.exists())
    calls = {
        name
        for arg in re.findall(r"hostCall\(([^,]*),", text)  # a name, or a choice of names
        for name in _QUOTED.findall(arg)
    }
    ops = set(re.findall(r"listOp\([^,]*,\s*'([^']*)'", text))
    ops |= set(re.findall(r"(?<![\w.])op\(\s*'([^']*)'", text))
    return calls, ops


def test_the_guest_and_the_registry_agree_on_every_name() -> None:
    registry = Registry(settings_for_tests())
    calls, ops = guest_names()
    assert calls and ops, "the prelude's names could not be read: update guest_names()"
    assert calls <= set(registry.calls) | set(registry.bound), "calls the guest makes that no unit registers"
    assert ops <= set(registry.ops), "ops the guest lists that no unit registers"
    used = calls | ops
    for unit in registry.units:
        for verb in (*unit.calls, *unit.bound_calls, *unit.ops, *unit.delays):
            assert f"{unit.name}.{verb}" in used, f"{unit.name}.{verb} is registered but the guest never sends it"


def test_every_sandbox_holds_the_response_and_the_built_ins_by_default() -> None:
    registry = Registry(settings_for_tests())
    assert [u.name for u in registry.units] == [
        "response", "streams", "timers", "crypto", "fetch", "shared", "fs", "ai", "isolate"
    ]
    assert {name for name in registry.ops if not name.startswith("fs.")} == {
        "response.drain", "streams.read", "streams.cancel", "timers.sleep", "fetch.request",
        "ai.chat", "ai.stream", "ai.object", "isolate.eval",
    }
    assert set(registry.calls) == {"crypto.hash", "crypto.hmac"}
    assert {name.split(".")[0] for name in registry.bound} == {"shared", "fs", "fetch"}
    assert Registry(settings_for_tests(), ()).units == CORE


def test_an_unknown_op_is_refused_naming_it_and_the_units_held() -> None:
    registry = Registry(settings_for_tests())
    with pytest.raises(Refused) as caught:
        registry.op("vault.open", {"timers": True})
    units = ", ".join(u.name for u in registry.units)
    assert str(caught.value) == (
        f"unknown host operation 'vault.open': no unit registers it (units: {units})"
    )


def test_an_op_of_a_unit_not_granted_is_refused_naming_what_grants_it() -> None:
    registry = Registry(settings_for_tests())
    assert registry.op("timers.sleep", {"timers": True}).delay is timers.sleep
    with pytest.raises(Refused, match="timers.sleep refused: this script is not granted timers"):
        registry.op("timers.sleep", {"crypto": True})


def test_a_unit_with_no_grant_is_refused_to_every_script() -> None:
    async def nothing(args: dict, ctx: object) -> None:
        return None

    closed = Unit(name="vault", granted_by="no script may open it", ops={"open": nothing})
    registry = Registry(settings_for_tests(), (closed,))
    grants = registry.grants("default/1", MagicComments())
    assert "vault" not in grants and "response" in grants
    with pytest.raises(Refused, match=r"vault.open refused: .* \(no script may open it\)"):
        registry.op("vault.open", grants)


def test_a_name_claimed_twice_is_refused() -> None:
    async def idle(args: dict, ctx: object) -> None:
        return None

    clash = Unit(name="clock", granted_by="", ops={"sleep": idle}, delays={"sleep": timers.sleep})
    with pytest.raises(ValueError, match="the clock unit declares one verb twice"):
        Registry(settings_for_tests(), (clash,))
    with pytest.raises(ValueError, match="two host units share a name"):
        Registry(settings_for_tests(), (crypto.UNIT, crypto.UNIT))


def test_results_go_back_as_json_or_as_bytes_in_the_blob() -> None:
    blob = bytearray(b"ab")
    assert answer(1, True, {"k": [1]}, blob) == {"id": 1, "ok": True, "value": {"k": [1]}}
    assert answer(2, True, b"xyz", blob) == {
        "id": 2, "ok": True, "bytes": True, "value": {"off": 2, "len": 3}
    }
    assert blob == b"abxyz"
    assert answer(3, False, "no", blob) == {"id": 3, "ok": False, "error": "no"}


def test_a_failure_keeps_the_name_of_a_host_refusal() -> None:
    assert error_value(QuotaExceeded("cap")) == {"name": "QuotaExceeded", "message": "cap"}
    assert error_value(Refused("not granted")) == {"name": "TypeError", "message": "not granted"}
    assert error_value(KeyError()) == "KeyError"
    assert error_value(ValueError("bad ms")) == "bad ms"


def test_every_built_in_is_granted_by_policy_once_per_version() -> None:
    artefact = SimpleNamespace(magic=MagicComments())  # all policy_for reads of an artefact
    policy = policy_for("default/1", "p.ts", artefact, settings_for_tests())  # type: ignore[arg-type]
    grants = dict(policy.grants)
    assert grants.pop("fetch").hosts is None  # every public host; the guard decides the rest
    assert grants.pop("isolate").depth_left == 3
    assert {k: v for k, v in grants.items() if v is True} == {
        "response": True, "streams": True, "timers": True, "crypto": True
    }
    assert {u.name for u in (*CORE, *UNITS) if u.name != "ai"} == set(policy.grants)  # ai: by @ai
    ai_version = SimpleNamespace(magic=MagicComments(ai=True))
    assert "ai" in policy_for("default/1", "p.ts", ai_version, settings_for_tests()).grants  # type: ignore[arg-type]


def test_the_units_settings_sections_are_part_of_the_one_settings() -> None:
    for unit in UNITS:
        if unit.settings is not None:
            assert issubclass(Settings, unit.settings), unit.name



