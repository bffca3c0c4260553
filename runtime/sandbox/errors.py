"""Why a script run failed, in terms a person can act on (positions in their own source)."""

from __future__ import annotations

import re
from collections.abc import Callable

from runtime.sandbox.types import LogRecord

Locate = Callable[[int, int], "tuple[int, int] | None"]

_FRAME = re.compile(r"\(([^()]*?):(\d+):(\d+)\)|at ([^\s()]+):(\d+):(\d+)")


class SandboxError(Exception):
    """The sandbox itself could not run the script (guest build, instantiation)."""


class ScriptError(Exception):
    """The script threw, failed to load, or was stopped."""

    def __init__(
        self,
        message: str,
        *,
        name: str = "Error",
        stack: str = "",
        path: str = "",
        line: int | None = None,
        col: int | None = None,
    ) -> None:
        super().__init__(message)
        self.logs: list[LogRecord] = []  # what the script logged before it failed
        self.name = name
        self.message = message
        self.stack = stack
        self.path = path
        self.line = line
        self.col = col

    def __str__(self) -> str:
        where = f" ({self.path}:{self.line}:{self.col})" if self.line else ""
        return f"{self.name}: {self.message}{where}"

    @classmethod
    def from_guest(cls, error: dict, path: str, locate: Locate | None) -> ScriptError:
        """Build from the guest's ``{"name","message","stack"}``, mapping frames to the source."""
        stack = str(error.get("stack") or "")
        line = col = None
        if "line" in error:  # compile errors carry their position directly
            line, col = _mapped(locate, int(error["line"]), int(error.get("col") or 0))

        def remap(m: re.Match[str]) -> str:
            nonlocal line, col
            file = m.group(1) or m.group(4)
            ln, cn = int(m.group(2) or m.group(5)), int(m.group(3) or m.group(6))
            if file != path:
                return m.group(0)
            ln, cn = _mapped(locate, ln, cn)
            if line is None:
                line, col = ln, cn
            return f"({file}:{ln}:{cn})" if m.group(1) is not None else f"at {file}:{ln}:{cn}"

        stack = _FRAME.sub(remap, stack)
        name = str(error.get("name") or "Error")
        message = str(error.get("message") or name)
        kind = ScriptTimeout if name == "TimeoutError" else cls
        err = kind(message, name=name, stack=stack, path=path, line=line, col=col)
        return err


def _mapped(locate: Locate | None, line: int, col: int) -> tuple[int, int]:
    if locate is None:
        return line, col
    return locate(line, col) or (line, col)


class ScriptTimeout(ScriptError):
    """The script ran past its ``@timeout``."""

    limit_ms: int | None = None

    @classmethod
    def after(cls, limit_ms: int | None, path: str) -> ScriptTimeout:
        err = cls(
            f"script exceeded its timeout of {limit_ms} ms (set with // @timeout)",
            name="TimeoutError",
            path=path,
        )
        err.limit_ms = limit_ms
        return err


class ScriptMemoryError(ScriptError):
    """The script allocated past its memory cap."""
