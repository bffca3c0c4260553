"""Does a JSON value fit a TypeScript type? The checker behind `validate/return-type`.

esbuild strips types without reading them, so this reads the part of TypeScript's type syntax
that describes JSON: primitives, literal types, arrays (`T[]`, `Array<T>`), tuples, object types
and interfaces (optional and readonly members, index signatures, `extends`), type aliases,
unions, intersections, `Record<K, V>`, `Partial`, `Required`, `Readonly` and `Promise` (a
handler's return type may be async). Anything else (generics of one's own, conditional or
mapped types, `keyof`, function types as values) is refused by name rather than guessed at.

Assignability is TypeScript's structural rule: an object may carry members its type does not
name. JSON has no `undefined`: an optional member, or one whose type admits `undefined`, may be
absent.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any


class TypeSyntaxError(ValueError):
    """A type definition this checker cannot read; `line` and `column` are 1-based."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.message, self.line, self.column = message, line, column


@dataclass(frozen=True)
class Mismatch:
    """Where the value departs from the type (`$.users[0].name`), and how."""

    path: str
    expected: str
    message: str


# -- types -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Prim:
    name: str  # string number boolean null undefined any unknown never object


@dataclass(frozen=True)
class Lit:
    value: str | float | bool


@dataclass(frozen=True)
class Arr:
    item: Type


@dataclass(frozen=True)
class Tup:
    items: tuple[Type, ...]
    optional: int = 0  # how many trailing items may be missing
    rest: Type | None = None


@dataclass(frozen=True)
class Member:
    type: Type
    optional: bool


@dataclass(frozen=True)
class Obj:
    members: dict[str, Member] = field(default_factory=dict)
    index: Type | None = None  # `[key: string]: T`, or Record<string, T>


@dataclass(frozen=True)
class Union:
    options: tuple[Type, ...]


@dataclass(frozen=True)
class Inter:
    parts: tuple[Type, ...]


@dataclass(frozen=True)
class Ref:
    name: str
    args: tuple[Type, ...] = ()


Type = Prim | Lit | Arr | Tup | Obj | Union | Inter | Ref

PRIMITIVES = frozenset({"string", "number", "boolean", "null", "undefined", "any", "unknown",
                        "never", "object", "void"})
_TOKEN = re.compile(r"""
    (?P<space>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<num>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<name>[A-Za-z_$][\w$]*)
  | (?P<punct>\.\.\.|=>|[{}()\[\]<>;:,?|&=.])
""", re.VERBOSE | re.DOTALL)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    at: int


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks: list[_Tok] = []
        at = 0
        while at < len(text):
            m = _TOKEN.match(text, at)
            if m is None:
                raise self._error(f"unexpected character {text[at]!r}", at)
            if m.lastgroup != "space":
                self.toks.append(_Tok(m.lastgroup or "", m.group(), at))
            at = m.end()
        self.i = 0

    def _error(self, message: str, at: int | None = None) -> TypeSyntaxError:
        if at is None:
            at = self.toks[self.i].at if self.i < len(self.toks) else len(self.text)
        line = self.text.count("\n", 0, at) + 1
        return TypeSyntaxError(message, line, at - (self.text.rfind("\n", 0, at) + 1) + 1)

    def peek(self, offset: int = 0) -> str:
        j = self.i + offset
        return self.toks[j].text if j < len(self.toks) else ""

    def take(self, expected: str) -> _Tok:
        if self.i >= len(self.toks):
            raise self._error(f"expected {expected!r}, the definition ended")
        tok = self.toks[self.i]
        if tok.text != expected:
            raise self._error(f"expected {expected!r}, found {tok.text!r}")
        self.i += 1
        return tok

    def next(self, what: str) -> _Tok:
        """The next token, whatever it is (`what` names what was expected, if there is none)."""
        if self.i >= len(self.toks):
            raise self._error(f"expected {what}, the definition ended")
        self.i += 1
        return self.toks[self.i - 1]

    def accept(self, text: str) -> bool:
        if self.peek() == text:
            self.i += 1
            return True
        return False

    def done(self) -> bool:
        return self.i >= len(self.toks)

    # declarations ---------------------------------------------------------------------------

    def declarations(self) -> tuple[dict[str, Type], list[str]]:
        named: dict[str, Type] = {}
        order: list[str] = []
        while not self.done():
            self.accept("export")
            self.accept("declare")
            if self.accept("interface"):
                name = self.name()
                bases: list[Type] = []
                if self.accept("extends"):
                    bases.append(self.reference())
                    while self.accept(","):
                        bases.append(self.reference())
                body = self.object()
                named[name] = Inter((*bases, body)) if bases else body
            elif self.accept("type"):
                name = self.name()
                if self.peek() == "<":
                    raise self._error(f"generic type {name}<…> is not supported; write the "
                                      "type out for the shape you return")
                self.take("=")
                named[name] = self.type()
            else:
                raise self._error(f"expected interface or type, found {self.peek()!r}")
            self.accept(";")
            order.append(name)
        return named, order

    def name(self) -> str:
        tok = self.next("a name")
        if tok.kind != "name":
            self.i -= 1
            raise self._error(f"expected a name, found {tok.text!r}")
        return tok.text

    # types ----------------------------------------------------------------------------------

    def type(self) -> Type:
        self.accept("|")
        options = [self.intersection()]
        while self.accept("|"):
            options.append(self.intersection())
        return options[0] if len(options) == 1 else Union(tuple(options))

    def intersection(self) -> Type:
        self.accept("&")
        parts = [self.postfix()]
        while self.accept("&"):
            parts.append(self.postfix())
        return parts[0] if len(parts) == 1 else Inter(tuple(parts))

    def postfix(self) -> Type:
        base = self.primary()
        while self.peek() == "[" and self.peek(1) == "]":
            self.i += 2
            base = Arr(base)
        return base

    def primary(self) -> Type:
        tok = self.next("a type")
        if tok.text == "(":
            inner = self.type()
            self.take(")")
            return inner
        if tok.text == "{":
            self.i -= 1
            return self.object()
        if tok.text == "[":
            return self.tuple()
        if tok.kind == "str":
            return Lit(_string(tok.text))
        if tok.kind == "num":
            return Lit(float(tok.text))
        if tok.text in ("true", "false"):
            return Lit(tok.text == "true")
        if tok.kind == "name":
            if tok.text in ("keyof", "typeof", "infer", "readonly", "unique"):
                raise self._error(f"'{tok.text}' types are not supported", tok.at)
            self.i -= 1
            return self.reference()
        raise self._error(f"expected a type, found {tok.text!r}", tok.at)

    def reference(self) -> Type:
        name = self.name()
        while self.accept("."):
            name += "." + self.name()
        if name in PRIMITIVES:
            return Prim("undefined" if name == "void" else name)
        args: list[Type] = []
        if self.accept("<"):
            args.append(self.type())
            while self.accept(","):
                args.append(self.type())
            self.take(">")
        return Ref(name, tuple(args))

    def tuple(self) -> Type:
        items: list[Type] = []
        optional = 0
        rest: Type | None = None
        while not self.accept("]"):
            if self.accept("..."):
                spread = self.type()
                if not isinstance(spread, Arr):
                    raise self._error("a rest element must be an array type, e.g. ...string[]")
                rest = spread.item
            else:
                if self.peek(1) in (":", "?") and self.peek(2) in (":", ""):
                    self.name()  # a labelled element: `[x: number]`
                    self.accept("?")
                    self.take(":")
                item = self.type()
                if self.accept("?"):
                    optional += 1
                elif optional:
                    raise self._error("a required element cannot follow an optional one")
                items.append(item)
            if not self.accept(","):
                self.take("]")
                break
        return Tup(tuple(items), optional, rest)

    def object(self) -> Obj:
        self.take("{")
        members: dict[str, Member] = {}
        index: Type | None = None
        while not self.accept("}"):
            if self.done():
                raise self._error("expected '}', the definition ended")
            self.accept("readonly")
            if self.peek() == "[":
                self.take("[")
                self.name()
                self.take(":")
                key = self.type()
                if key not in (Prim("string"), Prim("number")):
                    raise self._error("an index signature's key must be string or number")
                self.take("]")
                self.take(":")
                index = self.type()
            else:
                tok = self.next("a member name")
                if tok.kind not in ("name", "str", "num"):
                    raise self._error(f"expected a member name, found {tok.text!r}", tok.at)
                key_name = _string(tok.text) if tok.kind == "str" else tok.text
                optional = self.accept("?")
                if self.peek() == "(":
                    raise self._error(f"{key_name}: a method is not JSON; describe data only")
                self.take(":")
                members[key_name] = Member(self.type(), optional)
            if not (self.accept(";") or self.accept(",")) and self.peek() != "}":
                found = repr(self.peek()) if not self.done() else "the definition ended"
                raise self._error(f"expected ';' or '}}' after a member, found {found}")
        return Obj(members, index)


def _string(literal: str) -> str:
    body = literal[1:-1]
    if literal[0] == "'":
        body = body.replace('\\"', '"').replace('"', '\\"').replace("\\'", "'")
    parsed: str = json.loads(f'"{body}"')
    return parsed


# -- checking --------------------------------------------------------------------------------

class TypeChecker:
    """A type definition, parsed once: `check` a value against it."""

    def __init__(self, definition: str, name: str | None = None) -> None:
        """`definition` is a type (`{ id: number }[]`) or declarations (`interface`, `type`);
        the checked type is the one called `name`, else the last declared."""
        parser = _Parser(definition)
        if parser.peek() in ("interface", "type", "export", "declare") and parser.peek(1) != "|":
            self.named, order = parser.declarations()
            if name is None:
                name = order[-1]
            if name not in self.named:
                raise TypeSyntaxError(f"no type named {name} is declared (declared: "
                                      f"{', '.join(order)})", 1, 1)
            self.root: Type = self.named[name]
        else:
            self.named = {}
            self.root = parser.type()
            if not parser.done():
                raise parser._error(f"unexpected {parser.peek()!r} after the type")
        self.name = name
        self._check_refs(self.root, set())
        for declared in self.named.values():
            self._check_refs(declared, set())

    def check(self, value: Any) -> list[Mismatch]:
        found: list[Mismatch] = []
        self._check(self.root, value, "$", found, 0)
        return found

    # -------------------------------------------------------------------------------------

    def _check_refs(self, t: Type, seen: set[str]) -> None:
        if isinstance(t, Ref):
            builtin = _BUILTIN_ARITY.get(t.name)
            if t.name in self.named:
                if t.args:
                    raise TypeSyntaxError(f"{t.name} takes no type arguments", 1, 1)
            elif builtin is None:
                raise TypeSyntaxError(f"unknown type {t.name}: declare it (interface or type) "
                                      "or use a built-in type", 1, 1)
            elif len(t.args) != builtin:
                raise TypeSyntaxError(f"{t.name} takes {builtin} type argument(s)", 1, 1)
            if t.name == "Record" and t.args[0] not in (Prim("string"), Prim("number")) \
                    and not _is_key_union(t.args[0]):
                raise TypeSyntaxError("Record's key must be string, number or a union of "
                                      "string literals", 1, 1)
        for child in _children(t):
            self._check_refs(child, seen)

    def _resolve(self, t: Type, depth: int) -> Type:
        while isinstance(t, Ref) and t.name in self.named:
            if depth > 64:
                raise TypeSyntaxError(f"{t.name} refers to itself without end", 1, 1)
            t, depth = self.named[t.name], depth + 1
        return t

    def _fits(self, t: Type, value: Any, depth: int) -> bool:
        probe: list[Mismatch] = []
        self._check(t, value, "$", probe, depth)
        return not probe

    def _check(self, t: Type, value: Any, path: str, out: list[Mismatch], depth: int) -> None:
        if depth > 200:
            raise TypeSyntaxError("the value nests deeper than 200 levels", 1, 1)
        shown = t
        t = self._resolve(t, depth)

        def miss(message: str | None = None) -> None:
            expected = _show(shown)
            out.append(Mismatch(path, expected, message or
                                f"expected {expected}, got {_describe(value)}"))

        if isinstance(t, Prim):
            if not _prim_fits(t.name, value):
                miss()
        elif isinstance(t, Lit):
            if not _literal_fits(t.value, value):
                miss()
        elif isinstance(t, Arr):
            if not isinstance(value, list):
                return miss()
            for k, item in enumerate(value):
                self._check(t.item, item, f"{path}[{k}]", out, depth + 1)
        elif isinstance(t, Tup):
            self._tuple(t, value, path, out, depth, miss)
        elif isinstance(t, Obj):
            self._object(t, value, path, out, depth, miss)
        elif isinstance(t, Union):
            if not any(self._fits(option, value, depth + 1) for option in t.options):
                objects = [o for o in t.options if isinstance(self._resolve(o, depth), Obj)]
                if len(objects) == 1 and isinstance(value, dict):
                    self._check(objects[0], value, path, out, depth + 1)  # the one it meant
                else:
                    miss()
        elif isinstance(t, Inter):
            for part in t.parts:
                self._check(part, value, path, out, depth + 1)
        else:
            self._builtin(t, value, path, out, depth, miss)

    def _tuple(self, t: Tup, value: Any, path: str, out: list[Mismatch], depth: int,
               miss: Any) -> None:
        if not isinstance(value, list):
            return miss()
        least = len(t.items) - t.optional
        if len(value) < least or (t.rest is None and len(value) > len(t.items)):
            most = "" if t.rest is not None else f" to {len(t.items)}"
            return miss(f"expected a tuple of {least}{most} items, got {len(value)}")
        for k, item in enumerate(value):
            item_type = t.items[k] if k < len(t.items) else t.rest
            assert item_type is not None
            self._check(item_type, item, f"{path}[{k}]", out, depth + 1)

    def _object(self, t: Obj, value: Any, path: str, out: list[Mismatch], depth: int,
                miss: Any) -> None:
        if not isinstance(value, dict):
            return miss()
        for key, member in t.members.items():
            where = f"{path}.{key}" if re.fullmatch(r"[A-Za-z_$][\w$]*", key) \
                else f"{path}[{json.dumps(key)}]"
            if key not in value:
                if not member.optional and not self._fits(member.type, _ABSENT, depth + 1):
                    out.append(Mismatch(where, _show(member.type),
                                        f"missing required member {key!r}"))
                continue
            self._check(member.type, value[key], where, out, depth + 1)
        if t.index is not None:
            for key, item in value.items():
                if key not in t.members:
                    self._check(t.index, item, f"{path}[{json.dumps(key)}]", out, depth + 1)

    def _builtin(self, t: Type, value: Any, path: str, out: list[Mismatch], depth: int,
                 miss: Any) -> None:
        assert isinstance(t, Ref)
        if t.name in ("Array", "ReadonlyArray"):
            self._check(Arr(t.args[0]), value, path, out, depth)
        elif t.name in ("Promise", "Readonly", "NonNullable"):
            inner = t.args[0]
            if t.name == "NonNullable" and value is None:
                return miss()
            self._check(inner, value, path, out, depth)
        elif t.name == "Record":
            key = self._resolve(t.args[0], depth)
            if isinstance(key, Prim):
                self._check(Obj({}, t.args[1]), value, path, out, depth)
            else:
                options = key.options if isinstance(key, Union) else (key,)
                members = {str(o.value): Member(t.args[1], False) for o in options
                           if isinstance(o, Lit)}
                self._check(Obj(members), value, path, out, depth)
        elif t.name in ("Partial", "Required"):
            base = self._resolve(t.args[0], depth)
            if not isinstance(base, Obj):
                return miss(f"{t.name}<…> is supported over object types only")
            optional = t.name == "Partial"
            members = {k: Member(m.type, optional) for k, m in base.members.items()}
            self._check(Obj(members, base.index), value, path, out, depth)
        elif t.name == "Date" and not isinstance(value, str):
            miss("expected a Date, which JSON carries as a string")


_ABSENT = object()
"""A member JSON left out: only `undefined` (and any, unknown) admits it."""
_BUILTIN_ARITY = {"Array": 1, "ReadonlyArray": 1, "Promise": 1, "Readonly": 1, "NonNullable": 1,
                  "Record": 2, "Partial": 1, "Required": 1, "Date": 0}


def _is_key_union(t: Type) -> bool:
    options = t.options if isinstance(t, Union) else (t,)
    return all(isinstance(o, Lit) and isinstance(o.value, str) for o in options)


def _children(t: Type) -> tuple[Type, ...]:
    if isinstance(t, Arr):
        return (t.item,)
    if isinstance(t, Tup):
        return (*t.items, *((t.rest,) if t.rest is not None else ()))
    if isinstance(t, Obj):
        return (*(m.type for m in t.members.values()), *((t.index,) if t.index else ()))
    if isinstance(t, Union):
        return t.options
    if isinstance(t, Inter):
        return t.parts
    if isinstance(t, Ref):
        return t.args
    return ()


def _prim_fits(name: str, value: Any) -> bool:
    if name in ("any", "unknown"):
        return True
    if value is _ABSENT:
        return name == "undefined"
    return {
        "string": isinstance(value, str),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "null": value is None,
        "object": isinstance(value, (dict, list)),
    }.get(name, False)


def _literal_fits(expected: str | float | bool, value: Any) -> bool:
    if isinstance(expected, bool) or isinstance(value, bool):
        return value is expected
    if isinstance(expected, float):
        return isinstance(value, (int, float)) and value == expected
    return value == expected


def _describe(value: Any) -> str:
    if value is _ABSENT:
        return "nothing"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {json.dumps(shown)}"
    if isinstance(value, list):
        return f"an array of {len(value)}"
    return "an object"


def _show(t: Type) -> str:
    if isinstance(t, Prim):
        return t.name
    if isinstance(t, Lit):
        if isinstance(t.value, bool):
            return "true" if t.value else "false"
        if isinstance(t.value, float):
            return f"{t.value:g}"
        return json.dumps(t.value)
    if isinstance(t, Arr):
        inner = _show(t.item)
        return f"({inner})[]" if isinstance(t.item, (Union, Inter)) else f"{inner}[]"
    if isinstance(t, Tup):
        items = [_show(i) + ("?" if k >= len(t.items) - t.optional else "")
                 for k, i in enumerate(t.items)]
        if t.rest is not None:
            items.append(f"...{_show(t.rest)}[]")
        return f"[{', '.join(items)}]"
    if isinstance(t, Obj):
        members = [f"{k}{'?' if m.optional else ''}: {_show(m.type)}" for k, m in t.members.items()]
        if t.index is not None:
            members.append(f"[key: string]: {_show(t.index)}")
        text = "; ".join(members)
        return "{ " + (text if len(text) <= 60 else text[:57] + "...") + " }"
    if isinstance(t, Union):
        return " | ".join(_show(o) for o in t.options)
    if isinstance(t, Inter):
        return " & ".join(_show(p) for p in t.parts)
    return t.name + (f"<{', '.join(_show(a) for a in t.args)}>" if t.args else "")
