"""The answers ``instance.c`` gives to ``shared.get`` without Python (``answers.c``): one is
given only while its slot's counter is the one read before the value was, so neither a change
made after it was kept nor one made while the host was reading it is ever answered stale."""

from __future__ import annotations

import ctypes
from collections.abc import Callable

from runtime.sandbox import Sandbox
from runtime.sandbox.instance import ANSWER_SLOTS, Answers

Lookup = Callable[[bytes], bytes | None]


def lookup(sandbox: Sandbox, answers: Answers) -> Lookup:
    """What instance.c would answer for an input (None: it asks Python)."""
    get = sandbox.engine.native.lib.wxa_get
    get.restype = ctypes.c_int32
    get.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint32, ctypes.c_char_p, ctypes.c_uint32]

    def answer(data: bytes) -> bytes | None:
        out = ctypes.create_string_buffer(8192)
        n = get(answers._handle, data, len(data), out, len(out))
        return None if n < 0 else out.raw[:n]

    return answer


def test_an_answer_is_given_until_a_change_reaches_its_slot(sandbox: Sandbox) -> None:
    answers = Answers(sandbox.engine.native)
    given, versions = lookup(sandbox, answers), answers.versions
    k, o = hash("k") % ANSWER_SLOTS, hash("o") % ANSWER_SLOTS
    assert given(b'\n["k"]') is None
    answers.put(b'\n["k"]', b"1", k, versions[k])
    answers.put(b'\n["o","x"]', b'"x"', o, versions[o])
    assert given(b'\n["k"]') == b"1" and given(b'\n["o","x"]') == b'"x"'
    assert given(b'\n["k"] ') is None  # another input: asked
    versions[o] += 1  # o changed
    assert given(b'\n["o","x"]') is None
    assert given(b'\n["k"]') == (None if k == o else b"1")
    answers.put(b'\n["k"]', b"2", k, versions[k])  # read again: replaces the first
    assert given(b'\n["k"]') == b"2"


def test_a_value_read_while_its_key_changed_is_not_kept(sandbox: Sandbox) -> None:
    answers = Answers(sandbox.engine.native)
    given, versions = lookup(sandbox, answers), answers.versions
    k = hash("k") % ANSWER_SLOTS
    read_at = versions[k]  # the host reads the counter, then the value...
    versions[k] += 1  # ...which another thread changes before it keeps it
    answers.put(b'\n["k"]', b"old", k, read_at)
    assert given(b'\n["k"]') is None


def test_a_full_table_starts_again_and_large_answers_are_not_kept(sandbox: Sandbox) -> None:
    answers = Answers(sandbox.engine.native)
    given, versions = lookup(sandbox, answers), answers.versions
    for i in range(2000):
        answers.put(b'\n["k%d"]' % i, b"%d" % i, 0, versions[0])
    assert given(b'\n["k1999"]') == b"1999"
    assert sum(given(b'\n["k%d"]' % i) is not None for i in range(2000)) <= 1024
    answers.put(b'\n["big"]', b'"' + b"x" * 5000 + b'"', 1, versions[1])
    assert given(b'\n["big"]') is None
