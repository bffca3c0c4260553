"""Capabilities the guest may call, one module each, all behind one registry.

A capability is either a *call* — synchronous, pure and quick (hashing), answered while the
guest waits inside ``host_call`` — or an *op* — asynchronous I/O (later fetch, state, AI),
listed by the guest in its envelope and run by the host on the event loop — or a *delay*, an
op that only waits (timers): answered with null after the time its args give, on the event
loop's timer heap rather than a task of its own. Every op and delay a script lists counts
against its request's and its tenant's caps while it is pending (``quotas``). Each capability
module exposes ``register(caps, settings)``; the sandbox links whatever the registry holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.config import Settings

HostCall = Callable[[bytes], bytes]
"""A synchronous capability: request bytes → response bytes; raise ValueError to refuse."""


@dataclass(slots=True)
class OpContext:
    """Who is asking: the capability decides what that caller may do (deny by default)."""

    script: str
    tenant: str = "default/1"


HostOp = Callable[[dict[str, Any], OpContext], Awaitable[Any]]
"""An asynchronous capability: JSON args → a JSON-able value (or bytes)."""

HostDelay = Callable[[dict[str, Any]], float]
"""An op that only waits: JSON args → seconds to wait before answering null; ValueError refuses."""


@dataclass
class Capabilities:
    calls: dict[str, HostCall] = field(default_factory=dict)
    ops: dict[str, HostOp] = field(default_factory=dict)
    delays: dict[str, HostDelay] = field(default_factory=dict)


def default_capabilities(settings: Settings) -> Capabilities:
    """Every built-in capability, linked for one sandbox."""
    from runtime.host import crypto, timers

    caps = Capabilities()
    for module in (crypto, timers):
        module.register(caps, settings)
    return caps
