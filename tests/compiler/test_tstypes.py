"""TypeScript declarations read as OpenAPI schemas: the shapes it knows, and `{}` (any value) for
the ones it does not, never a wrong schema."""

from __future__ import annotations

from runtime.compiler.tstypes import declared_types


def test_primitives_literals_arrays_and_optional_fields() -> None:
    types = declared_types("""
        export interface Body {
          readonly id: number; name?: string, 'odd-key': boolean
          when: Date; list: string[][]; any: unknown
        }
    """)
    assert types["Body"] == {
        "type": "object",
        "properties": {
            "id": {"type": "number"}, "name": {"type": "string"},
            "odd-key": {"type": "boolean"}, "when": {"type": "string", "format": "date-time"},
            "list": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
            "any": {},
        },
        "required": ["id", "odd-key", "when", "list", "any"],
    }


def test_unions_enums_nullables_and_references() -> None:
    types = declared_types("""
        type Role = 'admin' | 'user'
        type Level = 1 | 2 | 3;
        type Maybe = string | null
        type Either = { ok: true } | { ok: false; error: string }
        type Wrapped = { role: Role; tags: Array<Role>; scores: Record<string, number> }
    """)
    assert types["Role"] == {"type": "string", "enum": ["admin", "user"]}
    assert types["Level"] == {"type": "integer", "enum": [1, 2, 3]}
    assert types["Maybe"] == {"type": "string", "nullable": True}
    assert [option["properties"]["ok"]["enum"] for option in types["Either"]["oneOf"]] == [
        [True], [False]]
    wrapped = types["Wrapped"]["properties"]
    assert wrapped["role"] == types["Role"]
    assert wrapped["tags"] == {"type": "array", "items": types["Role"]}
    assert wrapped["scores"] == {"type": "object", "additionalProperties": {"type": "number"}}


def test_what_cannot_be_read_allows_any_value() -> None:
    types = declared_types("""
        import type { Remote } from './remote';
        type Partly = Partial<{ a: string }>;
        type FromImport = Remote;
        type Mapped = { [K in 'a' | 'b']: number };
        type Loop = { next: Loop };
        interface Holder { value: Partly; fine: string }
    """)
    assert types["Partly"] == {} and types["FromImport"] == {} and types["Mapped"] == {}
    assert types["Holder"]["properties"]["fine"] == {"type": "string"}
    assert types["Holder"]["properties"]["value"] == {}
    depth = 0
    loop = types["Loop"]
    while loop:  # recursion is cut off, not followed for ever
        loop = loop["properties"]["next"]
        depth += 1
    assert depth < 20


def test_comments_and_code_around_declarations_are_ignored() -> None:
    types = declared_types("""
        // type Commented = { no: string }
        /* interface Hidden { x: number } */
        const type = 1; // a variable named type
        function handler() { type Inner = { inner: number }; return 1; }
        type Multi =
          | 'a'
          | 'b'
        return { ok: true };
    """)
    assert "Commented" not in types and "Hidden" not in types
    assert types["Inner"]["required"] == ["inner"]
    assert types["Multi"] == {"type": "string", "enum": ["a", "b"]}
