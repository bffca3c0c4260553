"""Magic comments: every directive, its default, and errors a person can act on."""

from __future__ import annotations

import json

import pytest

from runtime.compiler.magic import (
    DIRECTIVES,
    MagicCommentError,
    MagicComments,
    magic_comment_schema,
    parse_magic_comments,
)


def problems(source: str) -> list[tuple[int, str]]:
    with pytest.raises(MagicCommentError) as caught:
        parse_magic_comments(source)
    return caught.value.problems


def test_defaults_match_the_reference() -> None:
    magic = parse_magic_comments("return 1;\n")
    assert magic == MagicComments()
    assert magic.mode == "serverless"
    assert magic.cors == "none"
    assert magic.timeout is None
    assert magic.concurrent is None
    assert magic.token is None
    assert magic.websocket is False
    assert magic.ai is False
    assert magic.log_level == "standard"
    assert magic.log_request_body is False
    assert magic.enabled is True
    assert magic.env == {}


def test_every_directive_is_read() -> None:
    source = """#!/usr/bin/env wexec
// @mode worker
// @cors https://app.example.com
// @timeout 5000
// @concurrent 5
// @token my-secret-key-123
// @websocket
// @ai true
// @ai-model openai/gpt-4o
// @ai-temperature 0.7
// @ai-max-tokens 2048
// @ai-key team-tag
// @schedule */5 * * * *
// @log-level debug
// @log-request-body
// @description Greeting
// @description handler
// @label billing
// @tags webhook, stripe
// @enabled false
// @env API_BASE=https://api.example.com
// @env GREETING="hello there"
// @allow-hosts api.example.com, hooks.example.com:8443
return 1;
"""
    m = parse_magic_comments(source)
    assert m.mode == "worker"
    assert m.cors == "https://app.example.com"
    assert m.timeout == 5000
    assert m.concurrent == 5
    assert m.token is not None and m.token.get_secret_value() == "my-secret-key-123"
    assert m.websocket is True
    assert m.ai is True
    assert m.ai_model == "openai/gpt-4o"
    assert m.ai_temperature == 0.7
    assert m.ai_max_tokens == 2048
    assert m.ai_key is not None and m.ai_key.get_secret_value() == "team-tag"
    assert m.schedule == "*/5 * * * *"
    assert m.log_level == "debug"
    assert m.log_request_body is True
    assert m.description == "Greeting handler"
    assert m.label == "billing"
    assert m.tags == ("webhook", "stripe")
    assert m.enabled is False
    assert m.env == {"API_BASE": "https://api.example.com", "GREETING": "hello there"}
    assert m.allow_hosts == ("api.example.com", "hooks.example.com:8443")
    names = {line.split()[1][1:] for line in source.splitlines() if line.startswith("// @")}
    assert names == {d.name for d in DIRECTIVES}


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [
        ("@cors reflective", "cors", "reflective"),
        ("@cors *", "cors", "*"),
        ("@cors none", "cors", "none"),
        ("@timeout 0", "timeout", 0),
        ("@timeout unlimited", "timeout", 0),
        ("@concurrent true", "concurrent", None),
        ("@concurrent false", "concurrent", 1),
        ("@concurrent 1", "concurrent", 1),
        ("@log-request-body false", "log_request_body", False),
        ("@ai false", "ai", False),
        ("@schedule @daily", "schedule", "@daily"),
        ("@mode serverless", "mode", "serverless"),
    ],
)
def test_directive_values(line: str, field: str, value: object) -> None:
    assert getattr(parse_magic_comments(f"// {line}\nreturn 1;\n"), field) == value


def test_block_comments_hold_directives_too() -> None:
    source = """/**
 * Worker with sockets.
 * @mode worker
 * @websocket
 * @param req the request (JSDoc tags are not ours, and are skipped)
 */
/* @timeout 100 */
// @cors *
export default () => 1;
"""
    m = parse_magic_comments(source)
    assert (m.mode, m.websocket, m.timeout, m.cors) == ("worker", True, 100, "*")


def test_only_the_leading_comment_block_counts() -> None:
    m = parse_magic_comments("// @mode worker\n\nconst a = 1; // @mode serverless\n// @timeout 5\n")
    assert m.mode == "worker"
    assert m.timeout is None


def test_tool_pragmas_are_not_unknown_directives() -> None:
    assert parse_magic_comments("// @ts-nocheck\n// @jsxImportSource x\nreturn 1;\n").mode == "serverless"


def test_every_problem_is_reported_with_its_line() -> None:
    found = problems(
        "// @mode worker\n"
        "// @mod worker\n"
        "// @timeout 5s\n"
        "// @concurrent 0\n"
        "// @cors ftp://x\n"
        "// @schedule * * *\n"
        "// @log-level loud\n"
        "// @ai-temperature 3\n"
        "// @env 1BAD=x\n"
        "// @token\n"
        "// @mode serverless\n"
        "return 1;\n"
    )
    lines = [line for line, _ in found]
    assert lines == list(range(2, 12))
    text = dict(found)
    assert "unknown directive @mod" in text[2] and "did you mean @mode" in text[2]
    assert "@timeout" in text[3] and "5s" not in text[3]  # values are never quoted
    assert "given twice (first on line 1)" in text[11]


def test_error_message_lists_all_problems() -> None:
    with pytest.raises(MagicCommentError) as caught:
        parse_magic_comments("// @bogus\n// @timeout soon\n")
    message = str(caught.value)
    assert "line 1: unknown directive @bogus" in message
    assert "line 2: @timeout" in message


def test_websocket_needs_worker_mode() -> None:
    assert problems("// @websocket\n") == [(1, "@websocket requires @mode worker")]


def test_ai_directives_imply_ai_unless_contradicted() -> None:
    assert parse_magic_comments("// @ai-model a/b\n").ai is True
    found = problems("// @ai false\n// @ai-model a/b\n")
    assert found[0][0] == 1 and "contradicts" in found[0][1]


def test_secrets_never_show_in_repr_str_or_json() -> None:
    m = parse_magic_comments("// @token hunter2-secret\n// @ai-key key-123\n// @env PASS=pw-9\n")
    for text in (repr(m), str(m), m.model_dump_json(), repr(m.token)):
        assert "hunter2-secret" not in text
        assert "key-123" not in text
    assert "pw-9" not in repr(m)


def test_model_validates_on_its_own() -> None:
    with pytest.raises(ValueError):
        MagicComments(cors="sometimes")
    with pytest.raises(ValueError):
        MagicComments(schedule="never")


def test_schema_describes_every_directive() -> None:
    schema = magic_comment_schema()
    json.dumps(schema)
    by_name = {d["name"]: d for d in schema["directives"]}
    assert set(by_name) == {d.name for d in DIRECTIVES}
    assert by_name["mode"]["default"] == "serverless"
    assert by_name["mode"]["values"] == ["worker", "serverless"]
    assert by_name["log-level"]["default"] == "standard"
    assert by_name["timeout"]["default"] is None
    assert by_name["env"]["repeatable"] is True
    assert all(d["description"] for d in schema["directives"])
