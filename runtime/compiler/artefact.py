"""What a compiled script is: bytecode for the guest plus what the host needs to run it."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from .bytecode import FACTORY_LINES
from .magic import MagicComments
from .shape import Origin, Shape
from .sourcemap import SourceMap


@dataclass(frozen=True, eq=False)
class Artefact:
    """One script, compiled: immutable, shareable between threads and worker instances."""

    key: str
    """Content hash of everything that went into the bytecode."""
    path: str
    """Script path relative to its tenant root, e.g. ``api/users/[id].ts``."""
    bytecode: bytes = field(repr=False)
    magic: MagicComments
    shape: Shape
    mappings: str = field(repr=False)
    """esbuild's source map ``mappings`` (VLQ), decoded on the first ``locate``."""
    origin: Origin = field(repr=False)
    env: dict[str, str] = field(repr=False)
    """process.env for the script, from its ``@env`` directives."""

    @cached_property
    def _sourcemap(self) -> SourceMap:
        return SourceMap(self.mappings)

    def locate(self, line: int, col: int) -> tuple[int, int] | None:
        """Map a 1-based (line, col) in the compiled factory to the original file, if known."""
        return locate(self._sourcemap, self.origin, line, col)


def locate(sourcemap: SourceMap, origin: Origin, line: int, col: int) -> tuple[int, int] | None:
    """Factory position → esbuild output → text given to esbuild → original file, all 1-based."""
    generated = line - 1 - FACTORY_LINES
    if generated < 0:
        return None
    hit = sourcemap.lookup(generated, max(col - 1, 0))
    if hit is None:
        return None
    orig_line, orig_col = origin.original(hit[0] + 1, hit[1])
    return orig_line, orig_col + 1
