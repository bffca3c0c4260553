"""The return-type checker: JSON values against the TypeScript types that describe JSON."""

from __future__ import annotations

import re
from typing import Any

import pytest

from runtime.compiler.checks import BUILTIN_MODULES
from runtime.compiler.typecheck import TypeChecker, TypeSyntaxError
from tests.support import REPO

USER = """
interface Base { id: number }
interface User extends Base {
  name: string;
  email?: string;
  readonly role: 'admin' | 'user';
  tags: string[];
  prefs: Record<string, boolean>;
}
type Page = { users: User[]; total: number; next: string | null }
"""
GOOD_USER = {"id": 1, "name": "Ada", "role": "admin", "tags": ["x"], "prefs": {"dark": True}}


def paths(definition: str, value: Any, name: str | None = None) -> list[str]:
    return [m.path for m in TypeChecker(definition, name).check(value)]


def test_interfaces_with_extends_optional_and_readonly_members() -> None:
    assert paths(USER, {"users": [GOOD_USER], "total": 1, "next": None}) == []
    assert paths(USER, GOOD_USER, "User") == []
    assert paths(USER, GOOD_USER | {"email": "a@b"}, "User") == []
    bad = {"name": 3, "role": "root", "tags": "x", "prefs": {"dark": "yes"}}
    assert paths(USER, bad, "User") == ["$.id", "$.name", "$.role", "$.tags", '$.prefs["dark"]']
    assert paths(USER, GOOD_USER | {"email": None}, "User") == ["$.email"]  # null is not absent


def test_the_last_declared_type_is_checked_unless_one_is_named() -> None:
    assert paths(USER, {"users": [], "total": 0}) == ["$.next"]
    with pytest.raises(TypeSyntaxError, match="no type named Nope"):
        TypeChecker(USER, "Nope")


def test_mismatches_name_the_path_and_both_sides() -> None:
    [m] = TypeChecker(USER).check({"users": [GOOD_USER | {"id": "7"}], "total": 1, "next": None})
    assert m.path == "$.users[0].id" and m.expected == "number"
    assert m.message == 'expected number, got string "7"'
    [m] = TypeChecker(USER, "User").check({k: v for k, v in GOOD_USER.items() if k != "name"})
    assert m.path == "$.name" and m.message == "missing required member 'name'"


@pytest.mark.parametrize(("definition", "good", "bad"), [
    ("string", "a", 1), ("number", 1.5, True), ("boolean", False, 0), ("null", None, 0),
    ("object", [], "x"),
    ("'on' | 'off'", "on", "ON"), ("42", 42, 43), ("-1 | true", True, False),
    ("number[]", [1, 2], [1, "2"]), ("Array<string>", ["a"], [None]),
    ("ReadonlyArray<number | string>[]", [[1, "a"]], [[[1]]]),
    ("[string, number]", ["a", 1], ["a", 1, 2]), ("[string, number?]", ["a"], []),
    ("[number, ...string[]]", [1, "a", "b"], [1, 2]),
    ("{ [key: string]: number }", {"a": 1}, {"a": "1"}),
    ("Record<'a' | 'b', number>", {"a": 1, "b": 2}, {"a": 1}),
    ("Partial<{ a: number; b: string }>", {}, {"a": "x"}),
    ("Required<{ a?: number }>", {"a": 1}, {}),
    ("{ a: number } & { b: string }", {"a": 1, "b": "x"}, {"a": 1}),
    ("Promise<{ ok: true }>", {"ok": True}, {"ok": False}),
    ("({ kind: 'a'; n: number } | { kind: 'b' })[]", [{"kind": "b"}], [{"kind": "c"}]),
    ("{ 'odd key': string; 2: number }", {"odd key": "x", "2": 1}, {"odd key": "x"}),
    ("{ a?: string | undefined }", {}, {"a": None}),
    ("Date", "2024-01-01T00:00:00Z", 0),
])
def test_type_forms(definition: str, good: Any, bad: Any) -> None:
    checker = TypeChecker(definition)
    assert checker.check(good) == [], definition
    assert checker.check(bad) != [], definition


def test_any_and_unknown_accept_every_value() -> None:
    for value in (None, 1, "x", [1], {"a": {}}):
        assert paths("any", value) == paths("unknown", value) == []


def test_objects_may_carry_members_their_type_does_not_name() -> None:
    assert paths("{ a: number }", {"a": 1, "extra": "fine"}) == []


def test_recursive_types_through_names() -> None:
    tree = "interface Node { value: number; children: Node[] }"
    assert paths(tree, {"value": 1, "children": [{"value": 2, "children": []}]}) == []
    assert paths(tree, {"value": 1, "children": [{"value": "2", "children": []}]}) == \
        ["$.children[0].value"]


@pytest.mark.parametrize(("definition", "message"), [
    ("interface X { a: Foo }", "unknown type Foo"),
    ("{ a: number", "the definition ended"),
    ("type T<X> = X[]", "generic type T"),
    ("Record<boolean, string>", "Record's key"),
    ("keyof X", "'keyof' types are not supported"),
    ("{ f(): void }", "a method is not JSON"),
    ("string |", "expected a type"),
    ("Array<string, number>", "takes 1 type argument"),
    ("{ a: number } }", "unexpected '}'"),
    ("interface A { a: number }\ninterface B { b: % }", "line 2, column 18"),
])
def test_what_it_cannot_read_is_refused_with_where(definition: str, message: str) -> None:
    with pytest.raises(TypeSyntaxError, match=re.escape(message)):
        TypeChecker(definition)


def test_the_dependency_check_knows_the_modules_the_prelude_provides() -> None:
    source = (REPO / "guest" / "prelude" / "lib" / "node.js").read_text()
    table = re.search(r"const builtins = \{(.*?)\n\};", source, re.DOTALL)
    assert table is not None
    names = re.findall(r"^\s+(\w+)(?::|,)", table.group(1), re.MULTILINE)
    assert tuple(sorted(names)) == BUILTIN_MODULES
