"""What goes into a script run and what comes out of it."""

from __future__ import annotations

from dataclasses import dataclass, field

Query = dict[str, str | list[str]]


@dataclass(slots=True)
class Invocation:
    """One request as the guest sees it (the ``req`` and ``metadata`` of a script)."""

    method: str
    path: str
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    query: Query = field(default_factory=dict)
    params: Query = field(default_factory=dict)
    body: bytes = b""
    ip: str = ""


@dataclass(slots=True)
class LogRecord:
    level: str  # debug | info | warn | error | log
    message: str


@dataclass(slots=True)
class Result:
    """The response a script produced, with what it logged on the way."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    logs: list[LogRecord] = field(default_factory=list)
