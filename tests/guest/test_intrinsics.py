"""A script that replaces the built-ins the crossing code uses cannot change how its answer, its
logs and its operations are encoded: the prelude captured them when it loaded
(guest/prelude/crossing/intrinsics.js)."""

from __future__ import annotations

import json
from itertools import count

import pytest

from runtime.sandbox import Invocation, Sandbox, ScriptError

_names = count()

REPLACE = """
  JSON.stringify = () => 'hijacked';
  Array.prototype.join = function () { return 'hijacked'; };
  Array.prototype.push = function () { return 0; };
  Array.prototype.splice = function () { return []; };
  Array.prototype.filter = function () { return []; };
  Array.prototype.findIndex = function () { return -1; };
  String.prototype.slice = function () { return 'hijacked'; };
  String.prototype.split = function () { return []; };
  String.prototype.includes = function () { return true; };
  RegExp.prototype.exec = function () { return null; };
  Object.keys = () => [];
  Object.getPrototypeOf = () => null;
  Array.isArray = () => false;
  globalThis.String = () => 'hijacked';
"""


def run(sandbox: Sandbox, source: str) -> object:
    artefact = sandbox.compiler.compile_source(source, f"intrinsics{next(_names)}.js")
    return sandbox.run_sync(artefact, Invocation("GET", "/t"))


@pytest.mark.parametrize("mode", ["serverless", "worker"])
def test_replaced_intrinsics_leave_the_answer_logs_and_ops_intact(sandbox: Sandbox, mode: str) -> None:
    src = (
        f"// @mode {mode}\n"
        "export default async (req, res) => {\n"
        "  console.log('before', 1);\n"
        "  res.setHeader('x-list', ['a', 'b']);\n" + REPLACE +
        "  console.warn('after');\n"
        "  await new Promise((resolve) => setTimeout(resolve, 5)); // the host op 'timers.sleep'\n"
        "  return { ok: [1, 2], s: 'text' };\n"
        "};\n"
    )
    result = run(sandbox, src)
    assert json.loads(result.body) == {"ok": [1, 2], "s": "text"}  # type: ignore[attr-defined]
    assert [v for k, v in result.headers if k == "x-list"] == ["a", "b"]  # type: ignore[attr-defined]
    assert [(log.level, log.message) for log in result.logs] == [  # type: ignore[attr-defined]
        ("log", "before 1"), ("warn", "after"),
    ]


def test_replaced_intrinsics_leave_a_failure_intact(sandbox: Sandbox) -> None:
    src = "export default () => {\n" + REPLACE + "  throw new TypeError('boom');\n};\n"
    with pytest.raises(ScriptError) as info:
        run(sandbox, src)
    line = src.split("\n").index("  throw new TypeError('boom');") + 1
    assert (info.value.name, info.value.message, info.value.line) == ("TypeError", "boom", line)
    assert "intrinsics" in info.value.stack and "prelude.js" not in info.value.stack
