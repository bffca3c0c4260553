"""Prints the conformance table (API, cases, pass, expected failures, Node) after the run."""

from __future__ import annotations

from typing import Any

from tests.conformance.harness import RESULTS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not RESULTS:
        return
    write = terminalreporter.write_line
    write("")
    write("Web Platform Tests conformance (one sandbox run per API)")
    write(f"{'API':<24}{'cases':>7}{'pass':>7}{'rate':>8}{'expected fail':>15}{'Node 20':>9}")
    total = passed = node_total = node_passed = 0
    for o in RESULTS:
        node = "" if o.node_failed is None else f"{100 * (o.total - o.node_failed) / o.total:.1f}%"
        rate = 100 * o.passed / o.total if o.total else 100.0
        write(f"{o.api:<24}{o.total:>7}{o.passed:>7}{rate:>7.1f}%{len(o.expected):>15}{node:>9}")
        total += o.total
        passed += o.passed
        if o.node_failed is not None:
            node_total += o.total
            node_passed += o.total - o.node_failed
    node = f"{100 * node_passed / node_total:.1f}%" if node_total else ""
    write(f"{'all':<24}{total:>7}{passed:>7}{100 * passed / max(total, 1):>7.1f}%{'':>15}{node:>9}")
