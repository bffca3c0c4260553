"""Web Platform Tests data, run inside the sandbox: one run per API, not per case.

Each API's test gives the harness the WPT data file's cases and a small JS runner that
defines ``caseName(c, i)`` (a stable id for the case) and ``runCase(c)`` (throws when the
case fails). The harness evaluates every case in one sandboxed script, then compares the
failures with ``expected_failures.json``: a failure not listed fails the test, and so does a
listed one that now passes, so the list can only shrink. ``conftest.py`` prints the table.

The same runner can be run under Node (``node_outcome``) to print Node's figure beside ours.

WPT's ``.any.js`` files (Headers, Response, streams, encoding, ...) are scripts on testharness.js,
not data: ``run_wpt_files`` runs a list of them unchanged in one sandboxed script, each after the
resources its ``// META: script=`` lines name, under ``testharness.js`` beside this file (a small
runner compatible with WPT's), and ``node_wpt_outcome`` runs the same source under Node.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SHARED_WPT = HERE.parents[2] / "shared" / "wpt"  # beside the checkout, where data files may live
WPT = Path(os.environ.get("WEXEC_WPT", SHARED_WPT))
"""A Web Platform Tests tree (its own layout: ``url/resources/...``). This repository carries
none of WPT: ``wpt/README.md`` says why and where the tests look for it."""
RUNNER = HERE / "testharness.js"
META_SCRIPT = re.compile(r"^// META: script=(\S+)", re.MULTILINE)
EXPECTED = HERE / "expected_failures.json"

# The script around a runner: every case in one run, failures as {id: message}.
DRIVER = """
const failed = {};
for (let i = 0; i < cases.length; i++) {
  const c = cases[i];
  let name = String(i);
  try { name = String(caseName(c, i)); } catch {}
  try { runCase(c); } catch (e) {
    failed[name] = String((e && e.message) || e).slice(0, 200);
  }
}
"""


@dataclass
class Outcome:
    """One API's run: how many cases, which failed (id → message), Node's failures if run."""

    api: str
    total: int
    failed: dict[str, str]
    expected: dict[str, str] = field(default_factory=dict)
    node_failed: int | None = None

    @property
    def passed(self) -> int:
        return self.total - len(self.failed)


RESULTS: list[Outcome] = []  # read by conftest.py's summary


def wpt_json(rel: str) -> Any:
    """A WPT data file of the tree, e.g. ``wpt_json('url/resources/urltestdata.json')``."""
    return json.loads((WPT / rel).read_text(encoding="utf-8"))


def _source(runner: str, cases: list[Any], tail: str) -> str:
    data = json.dumps(json.dumps(cases))  # a JS string literal holding the JSON
    return f"const cases = JSON.parse({data});\n{runner}\n{DRIVER}\n{tail}\n"


def run_cases(sandbox: Any, api: str, runner: str, cases: list[Any]) -> Outcome:
    """Run every case of one API in one sandboxed script; returns its outcome."""
    from runtime.sandbox import Invocation

    source = _source(runner, cases, "return { total: cases.length, failed };")
    artefact = sandbox.compiler.compile_source(source, f"wpt-{api}.js")
    result = sandbox.run_sync(artefact, Invocation("GET", "/"))
    body = json.loads(result.body)
    return Outcome(api, body["total"], body["failed"])


def node_outcome(runner: str, cases: list[Any]) -> int | None:
    """How many of the same cases Node fails (None when node is not on PATH)."""
    node = shutil.which("node")
    if node is None:
        return None
    source = _source(runner, cases, "process.stdout.write(JSON.stringify(Object.keys(failed).length));")
    proc = subprocess.run(
        [node, "--input-type=module", "-"], check=False, input=source, capture_output=True, text=True, timeout=120
    )
    return int(proc.stdout) if proc.returncode == 0 and proc.stdout.strip().isdigit() else None


def wpt_files_present(files: list[str]) -> list[str]:
    """Which of ``files`` (paths under the WPT tree) are missing: the tests skip rather than fail."""
    return [f for f in files if not (WPT / f).is_file()]


def _wpt_unit(rel: str, root: Path) -> str:
    """One test file and the resources its META lines name, in a function of its own."""
    path = root / rel
    text = path.read_text(encoding="utf-8")
    parts = []
    for ref in META_SCRIPT.findall(text):
        if ref.endswith(("testharness.js", "testharnessreport.js")):
            continue
        resource = root / ref.lstrip("/") if ref.startswith("/") else (path.parent / ref).resolve()
        parts.append(resource.read_text(encoding="utf-8"))
    body = "\n".join([*parts, text])
    name = json.dumps(rel)
    return (
        f"__wpt.file({name});\n"
        f"try {{ (function () {{\n{body}\n}}).call(globalThis); }} catch (e) {{ __wpt.fileError({name}, e); }}\n"
    )


def _wpt_source(files: list[str], tail: str, root: Path) -> str:
    return "\n".join([RUNNER.read_text(encoding="utf-8"), *(_wpt_unit(f, root) for f in files), tail])


def run_wpt_files(sandbox: Any, api: str, files: list[str], root: Path = WPT) -> Outcome:
    """Run testharness ``.any.js`` files (WPT's under ``root``, or the project's own written the
    same way) in one sandboxed script; each test is a case, named file: test."""
    from runtime.sandbox import Invocation

    source = "// @timeout 120000\n" + _wpt_source(files, "return __wpt.finish();", root)
    artefact = sandbox.compiler.compile_source(source, f"wpt-{api}.js")
    result = sandbox.run_sync(artefact, Invocation("GET", "/"))
    assert result.status == 200, f"{api}: the conformance script failed: {result.body[:2000]!r}"
    body = json.loads(result.body)
    return Outcome(api, body["total"], body["failed"])


def node_wpt_outcome(files: list[str], total: int, root: Path = WPT) -> int | None:
    """How many of the same tests Node fails; a test Node never ran counts as failed."""
    node = shutil.which("node")
    if node is None:
        return None
    source = _wpt_source(files, "__wpt.finish().then((r) => process.stdout.write(JSON.stringify(r)));", root)
    proc = subprocess.run(
        [node, "--expose-gc", "--input-type=commonjs", "-"],
        check=False, input=source, capture_output=True, text=True, timeout=300,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    body = json.loads(proc.stdout)
    return len(body["failed"]) + max(0, total - body["total"])


def expected_failures(api: str) -> dict[str, str]:
    """The listed failures of one API, each with its reason."""
    listed: dict[str, dict[str, str]] = json.loads(EXPECTED.read_text()) if EXPECTED.exists() else {}
    return listed.get(api, {})


def check(outcome: Outcome) -> None:
    """Record the outcome for the table; fail on a new failure or on a listed one that passes."""
    outcome.expected = expected_failures(outcome.api)
    RESULTS.append(outcome)
    assert all(outcome.expected.values()), f"{outcome.api}: every expected failure needs a reason"
    new = sorted(set(outcome.failed) - set(outcome.expected))
    fixed = sorted(set(outcome.expected) - set(outcome.failed))
    assert not new, (
        f"{outcome.api}: {len(new)} case(s) fail that expected_failures.json does not list: "
        + "; ".join(f"{k}: {outcome.failed[k]}" for k in new[:10])
    )
    assert not fixed, (
        f"{outcome.api}: {len(fixed)} listed failure(s) now pass; remove them from "
        f"expected_failures.json: {fixed[:10]}"
    )
