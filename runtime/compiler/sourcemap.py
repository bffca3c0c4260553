"""Decode a source map (version 3, base64 VLQ) so runtime positions can be shown in the original.

Only the parts esbuild emits for one file are needed: generated line/column to source
line/column. Decoding is deferred until an error actually needs a position.
"""

from __future__ import annotations

import base64
import json
from bisect import bisect_right

_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def decode_vlq(segment: str) -> list[int]:
    """The signed integers of one mapping segment."""
    values: list[int] = []
    value = shift = 0
    for char in segment:
        digit = _B64[char]
        value += (digit & 31) << shift
        if digit & 32:
            shift += 5
            continue
        values.append(-(value >> 1) if value & 1 else value >> 1)
        value = shift = 0
    return values


class SourceMap:
    """Generated (line, col) → source (line, col), all 0-based, from a ``mappings`` string."""

    def __init__(self, mappings: str) -> None:
        self._lines: list[tuple[list[int], list[tuple[int, int]]]] = []
        src_line = src_col = src_index = 0
        for line in mappings.split(";"):
            cols: list[int] = []
            targets: list[tuple[int, int]] = []
            gen_col = 0
            for segment in line.split(","):
                if not segment:
                    continue
                fields = decode_vlq(segment)
                gen_col += fields[0]
                if len(fields) >= 4:
                    src_index += fields[1]
                    src_line += fields[2]
                    src_col += fields[3]
                    cols.append(gen_col)
                    targets.append((src_line, src_col))
            self._lines.append((cols, targets))

    @classmethod
    def from_json(cls, text: str) -> SourceMap:
        return cls(json.loads(text)["mappings"])

    def lookup(self, line: int, col: int) -> tuple[int, int] | None:
        """The source position of the last mapping at or before ``col`` on ``line``."""
        if not 0 <= line < len(self._lines):
            return None
        cols, targets = self._lines[line]
        if not cols:
            return None
        at = bisect_right(cols, col) - 1
        return targets[max(at, 0)]


def split_inline(js: str) -> tuple[str, str]:
    """Separate esbuild's inline ``sourceMappingURL`` comment from the code; return (code, map)."""
    marker = "//# sourceMappingURL=data:application/json;base64,"
    at = js.rfind(marker)
    if at < 0:
        return js, '{"mappings": ""}'
    payload = js[at + len(marker):].strip()
    return js[:at].rstrip("\n"), base64.b64decode(payload).decode("utf-8")
