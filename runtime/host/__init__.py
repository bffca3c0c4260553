"""The contract every host capability keeps: one ``Unit`` each, run by ``registry.Registry``.

A unit (Spin's factor, Python-sized) goes through one life cycle:

- **settings**: its section, a pydantic ``BaseSettings`` class of ``WEXEC_*`` fields that
  ``runtime.config.Settings`` inherits, so every knob stays on one object (tested);
- **per tenant**: ``configure(settings, tenant)`` reads what the operator and the tenant allow
  (allow-lists, which backend) into one plain value;
- **per script version**: ``grant(configured, magic)`` narrows that by the script's magic
  comments (never widens it) into what the version may use, or None to refuse the unit; the
  grants of every unit are computed once per version (``http.policy.Policy.grants``). A unit
  that declares no ``grant`` is refused to every script: deny by default;
- **per request**: ``request_state()`` makes what the unit keeps for one request (subrequests
  made, hops), on the first op of the unit in that request; if it has an async ``aclose``, that
  is called once the request ends, however it ends (``registry.end_request``), so what the
  unit still holds for it (open host streams, connections) is let go then.

What the guest reaches is the unit's *calls* and *ops*, named ``<unit>.<verb>``. A call is
synchronous and quick, answered while the guest waits inside its crossing. A pure call
(hashing) gets bytes, not a caller, so it cannot hold authority. A *bound call* gets bytes and
the ``Caller``: the tenant and script of the instance making the crossing, with its grants,
and the registry runs it only for a caller granted its unit (shared state: synchronous, and
per tenant). The sandbox names the caller of each instance when it makes it, so nothing the
guest sends can claim to be someone else. Anything that waits is an op, which gets an ``OpContext``
saying who asks. A *delay* is an op that only waits (timers). Every check lives in the unit
and the registry, never in the guest prelude: script code can reach the raw op interface
(``__wexec.op(name, args)``) and list any name with any arguments.

A unit that holds something for the whole process (a store, a client pool) may declare
``shutdown``: the registry calls it when its sandbox closes, to flush or let go of it.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

    from runtime.compiler.magic import MagicComments
    from runtime.config import Settings
    from runtime.host.quotas import TenantQuota
    from runtime.sandbox.types import BodyStream

class Running(threading.local):
    """What crosses into the guest on this thread. A host call from the guest is
    ``instance``'s, for its caller and into its memory (a crossing made inside a host call
    names its own instance until it returns); ``driver``, the ``Driver`` making the crossing
    when one is, says who each of its requests is, for a call that acts for one."""

    instance: Any = None
    driver: Any = None


running = Running()

HOST_OUT_BYTES = 64 * 1024
"""What a call's answer may hold: the guest's buffer for it (``HOST_OUT_CAP``,
guest/shim/hot.c)."""

HostCall = Callable[[bytes], bytes]
"""A call: request bytes → response bytes; raise ValueError to refuse. Pure by construction."""

Grants = Mapping[str, Any]
"""What one script version may use: unit name → that unit's grant (absent: refused)."""


class Rerun(Exception):
    """A bound call would change host state in a crossing that may still be thrown away and
    run again (``Crossing``): the crossing stops instead (a trap) and the sandbox reruns the
    request where the call goes through, so the change is made once."""


@dataclass(slots=True)
class Crossing:
    """Whether the instance's crossing now may be thrown away and run again from a fresh
    instance: a serverless request's first slice on the event loop (sandbox.py) is, when it
    outruns the slice. What such a crossing changes in the host would be changed twice."""

    rerunnable: bool = False
    rerun: bool = False  # a bound call stopped it (``commit``): run the request again

    def commit(self) -> None:
        """Call before a bound call changes host state: raises ``Rerun`` in a rerunnable
        crossing."""
        if self.rerunnable:
            self.rerun = True
            raise Rerun("a host state change in a crossing that may be run again")


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a guest instance acts for, as a bound call sees it: set by the sandbox on the
    instance when it makes it."""

    tenant: str
    script: str
    grants: Grants
    crossing: Crossing = field(default_factory=Crossing)

BoundCall = Callable[[bytes, Caller], bytes]
"""A bound call: request bytes and who calls → response bytes; raise ValueError or HostError
to refuse. Run only for a caller granted its unit."""


@dataclass(slots=True)
class Services:
    """What an op may use of the host around it, beyond its own unit. The sandbox sets
    ``sandbox`` (a nested run, as ``isolate.eval`` makes); the app that serves HTTP sets
    ``dispatch`` (a request answered in-process, as a relative ``fetch`` makes) and
    ``catalog`` (the live scripts, which ``fs`` refreshes when it writes one). None: this
    host has no such service, and the op says so."""

    sandbox: Any = None
    dispatch: Any = None
    inline: Any = None  # a relative fetch answered in its caller's crossing, and its ``claim``
    claim: Any = None
    catalog: Any = None


@dataclass(slots=True)
class OpContext:
    """Who asks for an op, made on a request's first op: a unit decides from it (deny by default)."""

    tenant: str
    script: str
    rid: int
    deadline: float | None  # time.monotonic() past which the request is given up; None: never
    grants: Grants
    stream: BodyStream | None = None  # the request's streamed response, once it has one
    state: dict[str, Any] = field(default_factory=dict)  # unit name → its ``request_state()``
    services: Services = field(default_factory=Services)
    quota: TenantQuota | None = None  # the tenant's ledger, for what a unit holds (host streams)
    hops: int = 0  # scripts the request already passed through (fetch's loop guard)


HostOp = Callable[[dict[str, Any], OpContext], Awaitable[Any]]
"""An op: JSON args and who asks → a JSON-able value or bytes; an exception rejects it."""

HostDelay = Callable[[dict[str, Any]], float]
"""An op that only waits: JSON args → seconds before it answers null; ValueError refuses."""


class HostError(Exception):
    """A refusal the script sees as an error of ``js_name``, with this text as its message."""

    js_name = "Error"


class Refused(HostError):
    """An op that is unknown, not held by this sandbox, or not granted to the script."""

    js_name = "TypeError"


def _not_configured(settings: Settings, tenant: str) -> None:
    return None


def _denied(configured: Any, magic: MagicComments) -> None:
    return None


def always(configured: Any, magic: MagicComments) -> bool:
    """``grant`` for a unit that reaches nothing outside the host's own time and CPU."""
    return True


@dataclass(frozen=True, slots=True)
class Unit:
    """One host capability: what it declares at each stage of the life cycle (module docstring)."""

    name: str
    granted_by: str
    """What grants the unit, as a refusal tells the script author (a setting, a magic comment)."""
    calls: Mapping[str, HostCall] = field(default_factory=dict)  # by verb
    bound_calls: Mapping[str, BoundCall] = field(default_factory=dict)  # by verb
    ops: Mapping[str, HostOp] = field(default_factory=dict)  # by verb
    delays: Mapping[str, HostDelay] = field(default_factory=dict)  # by verb
    settings: type[BaseSettings] | None = None
    configure: Callable[[Settings, str], Any] = _not_configured
    grant: Callable[[Any, MagicComments], Any] = _denied
    request_state: Callable[[], Any] | None = None
    shutdown: Callable[[], None] | None = None

    def verbs(self) -> dict[str, str]:
        """Every name the guest may send for this unit → the verb it means."""
        return {
            f"{self.name}.{verb}": verb
            for verb in (*self.calls, *self.bound_calls, *self.ops, *self.delays)
        }
