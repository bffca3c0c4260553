"""TypeScript type declarations in a script, read as OpenAPI 3.0 schemas where they can be.

Reads `type Name = …` and `interface Name { … }` at any level of a source file and turns the
common shapes into schemas: primitives, string/number/boolean literals, unions (a union with
`null` is `nullable`; one of literals is an `enum`), arrays (`T[]`, `Array<T>`), object types
with optional fields, `Record<string, T>`, `Date`, and references to other types declared in
the same file. What it cannot read (generics, mapped or conditional types, imports) becomes the
empty schema `{}`, which allows any value: a spec that says less, never one that is wrong.
"""

from __future__ import annotations

import re
from typing import Any

Schema = dict[str, Any]

_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_TOKEN = re.compile(r"""\s*(?:(?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)
                        |(?P<id>[A-Za-z_$][\w$]*)|(?P<punct>\[\]|[{}()<>\[\];,:?|&=.]))""", re.VERBOSE)
_DECLARATION = re.compile(r"\b(?:type\s+([A-Za-z_$][\w$]*)\s*=|interface\s+([A-Za-z_$][\w$]*)"
                          r"(?:\s+extends\s+[^{]+)?\s*(?={))")
_PRIMITIVES: dict[str, Schema] = {
    "string": {"type": "string"}, "number": {"type": "number"}, "bigint": {"type": "integer"},
    "boolean": {"type": "boolean"}, "Date": {"type": "string", "format": "date-time"},
    "any": {}, "unknown": {}, "object": {"type": "object"},
}
_MAX_DEPTH = 16


class _Unreadable(Exception):
    pass


def declared_types(source: str) -> dict[str, Schema]:
    """Every readable type declared in `source`, by name, as an OpenAPI 3.0 schema."""
    text = _COMMENT.sub(" ", source)
    bodies: dict[str, list[str]] = {}
    for match in _DECLARATION.finditer(text):
        name = match.group(1) or match.group(2)
        tokens = _tokens(text, match.end(), interface=match.group(2) is not None)
        if tokens is not None:
            bodies.setdefault(name, tokens)
    return {name: _Reader(bodies).schema_of(name, 0) for name in bodies}


def _tokens(text: str, start: int, *, interface: bool) -> list[str] | None:
    """The tokens of one declaration's type: to the `;` or line end outside brackets (a type
    alias), or to the closing brace (an interface)."""
    tokens: list[str] = []
    depth = 0
    position = start
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            if text[position:].strip():
                return None  # a character no type is made of
            break
        gap = text[position:match.start(match.lastgroup or 0)]
        token = match.group(match.lastgroup or 0)
        if (not interface and depth == 0 and tokens and "\n" in gap
                and tokens[-1] not in ("|", "&", "=", ":") and token not in ("|", "&")):
            break  # a type alias without `;` ends at its line's end
        position = match.end()
        if token in ("{", "(", "<", "["):
            depth += 1
        elif token in ("}", ")", ">", "]"):
            depth -= 1
        if not interface and depth == 0 and token == ";":
            break
        tokens.append(token)
        if interface and depth == 0:
            break
    return tokens or None


class _Reader:
    def __init__(self, bodies: dict[str, list[str]]) -> None:
        self.bodies = bodies

    def schema_of(self, name: str, depth: int) -> Schema:
        if depth > _MAX_DEPTH:
            return {}
        try:
            parser = _Parser(self.bodies[name], self, depth)
            schema = parser.union()
            return schema if parser.at_end() else {}
        except (_Unreadable, IndexError):
            return {}


class _Parser:
    def __init__(self, tokens: list[str], reader: _Reader, depth: int) -> None:
        self.tokens, self.reader, self.depth, self.i = tokens, reader, depth, 0

    def at_end(self) -> bool:
        return self.i >= len(self.tokens)

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.tokens[self.i]
        if expected is not None and token != expected:
            raise _Unreadable(token)
        self.i += 1
        return token

    def union(self) -> Schema:
        if self.peek() == "|":
            self.take()
        options = [self.intersection()]
        while self.peek() == "|":
            self.take()
            options.append(self.intersection())
        return _union(options)

    def intersection(self) -> Schema:
        parts = [self.postfix()]
        while self.peek() == "&":
            self.take()
            parts.append(self.postfix())
        return parts[0] if len(parts) == 1 else {"allOf": parts}

    def postfix(self) -> Schema:
        schema = self.primary()
        while self.peek() == "[]":
            self.take()
            schema = {"type": "array", "items": schema}
        return schema

    def primary(self) -> Schema:
        token = self.take()
        if token == "(":
            inner = self.union()
            self.take(")")
            return inner
        if token == "{":
            return self.object()
        if token[0] in "'\"":
            return {"type": "string", "enum": [token[1:-1]]}
        if token[0].isdigit() or token[0] == "-":
            number = float(token)
            return {"type": "integer" if number.is_integer() else "number",
                    "enum": [int(number) if number.is_integer() else number]}
        if token in ("true", "false"):
            return {"type": "boolean", "enum": [token == "true"]}
        if token in ("null", "undefined", "void"):
            return {"nullable": True}
        if token == "Array" and self.peek() == "<":
            self.take()
            items = self.union()
            self.take(">")
            return {"type": "array", "items": items}
        if token == "Record" and self.peek() == "<":
            self.take()
            self.union()
            self.take(",")
            values = self.union()
            self.take(">")
            return {"type": "object", "additionalProperties": values}
        if token in _PRIMITIVES and self.peek() != "<":
            return dict(_PRIMITIVES[token])
        if token in self.reader.bodies and self.peek() != "<":
            return self.reader.schema_of(token, self.depth + 1)
        raise _Unreadable(token)

    def object(self) -> Schema:
        properties: dict[str, Schema] = {}
        required: list[str] = []
        extra: Schema | None = None
        while self.peek() != "}":
            if self.peek() in (";", ","):
                self.take()
                continue
            if self.peek() == "readonly":
                self.take()
            if self.peek() == "[":  # an index signature: [key: string]: T
                self.take()
                self.take()
                self.take(":")
                self.union()
                self.take("]")
                self.take(":")
                extra = self.union()
                continue
            key = self.take()
            key = key[1:-1] if key[0] in "'\"" else key
            optional = self.peek() == "?"
            if optional:
                self.take()
            self.take(":")
            properties[key] = self.union()
            if not optional:
                required.append(key)
        self.take("}")
        schema: Schema = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        if extra is not None:
            schema["additionalProperties"] = extra
        return schema


def _union(options: list[Schema]) -> Schema:
    nullable = any(option == {"nullable": True} for option in options)
    rest = [option for option in options if option != {"nullable": True}]
    if not rest:
        return {"nullable": True}
    if all("enum" in option and option.get("type") == rest[0].get("type") for option in rest):
        schema: Schema = {"type": rest[0]["type"],
                          "enum": [value for option in rest for value in option["enum"]]}
    elif len(rest) == 1:
        schema = dict(rest[0])
    else:
        schema = {"oneOf": rest}
    if nullable:
        schema["nullable"] = True
    return schema
