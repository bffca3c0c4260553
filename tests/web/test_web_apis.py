"""The scripts' Web APIs inside the sandbox: wexec's own testharness cases (tests/web/cases/),
run in one sandboxed script per file by the conformance harness. Node runs the same cases for the
table's figure; it fails a few where it departs from the Encoding Standard (windows-1252 decodes
as Latin-1 there, x-user-defined is missing)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.harness import check, node_wpt_outcome, run_wpt_files

CASES = Path(__file__).resolve().parent / "cases"


@pytest.mark.parametrize("name", sorted(p.name for p in CASES.glob("*.any.js")))
def test_cases_pass_in_the_sandbox(sandbox: object, name: str) -> None:
    outcome = run_wpt_files(sandbox, f"wexec {name}", [name], root=CASES)
    assert outcome.total > 3
    outcome.node_failed = node_wpt_outcome([name], outcome.total, root=CASES)
    check(outcome)
