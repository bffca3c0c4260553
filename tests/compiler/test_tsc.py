"""The pinned TypeScript checker process: checks as a module with wexec's globals, survives its
process dying, and says why when node is missing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runtime.compiler import tsc
from runtime.compiler.tsc import Checker, Diagnostic, Unavailable, installed
from tests.support import settings_for_tests


@pytest.fixture(scope="module")
def checker() -> Iterator[Checker]:
    cache = settings_for_tests().cache_dir
    try:
        installed(cache)
    except Unavailable as exc:
        pytest.skip(str(exc))
    found = Checker(cache)
    yield found
    found.close()


def test_a_top_level_return_is_checked_and_narrows(checker: Checker) -> None:
    code = ("const x = metadata.query.a;\nif (typeof x !== 'string') return;\n"
            "const n: number = x.length; const m: number = x;\nreturn res.status('x');\n")
    assert checker.check(code) == [
        Diagnostic(2322, "Type 'string' is not assignable to type 'number'.", 3, 35),
        Diagnostic(2345, "Argument of type 'string' is not assignable to parameter of type "
                   "'number'.", 4, 19)]


def test_each_script_is_its_own_module(checker: Checker) -> None:
    assert checker.check("const req = 1;\nexport {};\n") == []  # shadows the global, no clash
    assert checker.check("const a: number = 1;\nreturn a;") == []
    assert checker.check("const a: number = 1;\nreturn a;") == []  # a second time, no redeclare


def test_the_process_restarts_when_it_dies(checker: Checker) -> None:
    assert checker.check("return 1;") == []
    proc = checker._proc
    assert proc is not None
    proc.kill()
    proc.wait()
    assert checker.check("res.json(1, 2);") == [
        Diagnostic(2554, "Expected 1 arguments, but got 2.", 1, 13)]  # a new process
    assert checker._proc is not None and checker._proc.pid != proc.pid


def test_the_process_stops_when_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tsc, "IDLE_S", 0.5)
    idle = Checker(settings_for_tests().cache_dir)
    assert idle.check("return 1;") == []
    proc = idle._proc
    assert proc is not None
    proc.wait(timeout=10)  # stopped by the idle timer, not by the test
    assert idle._proc is None
    assert idle.check("return 1;") == []  # started again on demand
    idle.close()


def test_a_check_over_the_timeout_restarts_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    slow = Checker(settings_for_tests().cache_dir)
    assert slow.check("return 1;") == []
    monkeypatch.setattr(tsc, "CHECK_TIMEOUT_S", 0.0)
    with pytest.raises(Unavailable, match="a type check took over 0 s; the checker was restarted"):
        slow.check("const n: number = 'x';")
    assert slow._proc is None
    monkeypatch.undo()
    assert [d.code for d in slow.check("const n: number = 'x';")] == [2322]
    slow.close()


def test_without_node_it_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(Unavailable, match="node is not on the server's PATH: install Node.js"):
        Checker(settings_for_tests().cache_dir).check("return 1;")
