"""The unit contract end to end, through a unit made for the test: its settings section read from
the environment, its per-tenant configuration, grants a magic comment narrows and never widens,
the ``OpContext`` an op gets, per-request state, and bytes and refusals reaching the script."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings

from runtime.compiler.magic import MagicComments
from runtime.config import Settings
from runtime.host import OpContext, Unit
from runtime.host.registry import grants_for
from tests.host.harness import holding
from tests.support import settings_for_tests


class ProbeSettings(BaseSettings):
    probe_topics: list[str] = Field(default_factory=lambda: ["a", "b"])
    tenant_probe_topics: dict[str, list[str]] = Field(default_factory=dict)


class ProbeAll(ProbeSettings, Settings):
    """How ``runtime.config.Settings`` takes a unit's section: by inheriting it."""


def configure(settings: Settings, tenant: str) -> frozenset[str]:
    assert isinstance(settings, ProbeSettings)
    return frozenset(settings.tenant_probe_topics.get(tenant, settings.probe_topics))


def grant(topics: frozenset[str], magic: MagicComments) -> frozenset[str] | None:
    narrowed = topics & set(magic.tags) if magic.tags else topics  # `// @tags` stands in
    return narrowed or None


async def ask(args: dict[str, Any], ctx: OpContext) -> Any:
    topic = args.get("topic")
    if topic not in ctx.grants["probe"]:
        raise PermissionError(f"probe of {topic!r} refused: not among {sorted(ctx.grants['probe'])}")
    ctx.state["probe"]["asked"] += 1
    if args.get("bytes"):
        return topic.encode()
    return {"tenant": ctx.tenant, "script": ctx.script, "rid": ctx.rid,
            "deadline": ctx.deadline is not None, "asked": ctx.state["probe"]["asked"]}


PROBE = Unit(
    name="probe", granted_by="WEXEC_PROBE_TOPICS, narrowed by // @tags", settings=ProbeSettings,
    ops={"ask": ask}, configure=configure, grant=grant, request_state=lambda: {"asked": 0},
)

ASK_TWICE = (
    "const a = await __wexec.op('probe.ask', { topic: 'a' });\n"
    "const b = await __wexec.op('probe.ask', { topic: 'a' });\n"
    "const raw = await __wexec.op('probe.ask', { topic: 'b', bytes: true });\n"
    "return { a, b, raw: new TextDecoder().decode(raw) };"
)


def probe_settings(**overrides: Any) -> ProbeAll:
    return ProbeAll(cache=settings_for_tests().cache_dir, **overrides)


def test_a_units_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEXEC_PROBE_TOPICS", '["x"]')
    monkeypatch.setenv("WEXEC_TENANT_PROBE_TOPICS", '{"alice/1": ["y"]}')
    settings = ProbeAll()
    assert configure(settings, "default/1") == {"x"}
    assert configure(settings, "alice/1") == {"y"}


def test_a_magic_comment_narrows_the_grant_and_never_widens_it() -> None:
    settings = probe_settings(tenant_probe_topics={"alice/1": ["a"]})
    assert grants_for((PROBE,), settings, "default/1", MagicComments())["probe"] == {"a", "b"}
    assert grants_for((PROBE,), settings, "default/1", MagicComments(tags=("b", "z")))["probe"] == {"b"}
    assert grants_for((PROBE,), settings, "alice/1", MagicComments(tags=("b",))).get("probe") is None


async def test_an_op_gets_who_asks_and_its_requests_own_state() -> None:
    with holding(PROBE, settings=probe_settings()) as h:
        for mode in ("serverless", "worker"):
            first = json.loads((await h.run(ASK_TWICE, mode=mode, tenant="bob/1")).body)
            again = json.loads((await h.run(ASK_TWICE, mode=mode, tenant="bob/1")).body)
            assert first["a"]["tenant"] == "bob/1" and first["a"]["script"].endswith(".ts")
            assert first["a"]["deadline"] is True
            assert [first["a"]["asked"], first["b"]["asked"]] == [1, 2], mode
            assert again["b"]["asked"] == 2 and first["raw"] == "b", mode


async def test_a_script_reaching_the_raw_op_interface_gets_only_what_it_was_granted() -> None:
    with holding(PROBE, settings=probe_settings()) as h:
        src = (
            "// @tags a\n"
            "const out = [];\n"
            "for (const topic of ['a', 'b']) {\n"
            "  try { await __wexec.op('probe.ask', { topic }); out.push(topic + ': ok'); }\n"
            "  catch (e) { out.push(e.message); }\n"
            "}\n"
            "try { await __wexec.op('timers.sleep', { ms: 1 }); } catch (e) { out.push(e.name + ': ' + e.message); }\n"
            "return out;"
        )
        out = json.loads((await h.run(src)).body)
        refused = json.loads((await h.run(src, grants={"response": True})).body)
    assert out == [
        "a: ok",
        "probe of 'b' refused: not among ['a']",
        (
            "TypeError: host operation 'timers.sleep' refused: this sandbox does not hold the timers "
            "unit (every script may use timers where the timers unit is held)"
        ),
    ]
    assert refused[0] == (
        "host operation probe.ask refused: this script is not granted probe "
        "(WEXEC_PROBE_TOPICS, narrowed by // @tags)"
    )
