"""The registry: the units one sandbox holds, and the one way their ops and calls are run.

The driver only starts what a crossing lists (``op``, counted against the quotas), awaits
``run`` and hands back ``answer``; the engine answers ``host_call`` from ``calls``. Lookup,
refusal, per-request state and result encoding are here, the same for every unit.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from runtime.host import (
    Grants,
    HostCall,
    HostDelay,
    HostError,
    HostOp,
    OpContext,
    Refused,
    Services,
    Unit,
    crypto,
    response,
    streams,
    timers,
)
from runtime.host.fetch import unit as fetch

if TYPE_CHECKING:
    from runtime.compiler.magic import MagicComments
    from runtime.config import Settings

UNITS: tuple[Unit, ...] = (timers.UNIT, crypto.UNIT, fetch.UNIT)
"""Every built-in capability. Adding one: its module here, its guest half, its tests."""

CORE: tuple[Unit, ...] = (response.UNIT, streams.UNIT)
"""Units every sandbox holds: the response itself and host streams (how other units' answers
arrive in pieces), not capabilities a script may be without."""


def held(units: tuple[Unit, ...]) -> tuple[Unit, ...]:
    """The units a sandbox built with ``units`` holds: ``CORE`` and those."""
    return (*CORE, *(u for u in units if u not in CORE))


def grants_for(units: tuple[Unit, ...], settings: Settings, tenant: str, magic: MagicComments) -> Grants:
    """What one script version of ``tenant`` may use of ``units`` (and ``CORE``): computed once
    per version, from what the operator and the tenant allow, narrowed by its magic comments."""
    granted = {}
    for unit in held(units):
        grant = unit.grant(unit.configure(settings, tenant), magic)
        if grant is not None:
            granted[unit.name] = grant
    return MappingProxyType(granted)


@dataclass(frozen=True, slots=True)
class Entry:
    """One op as the registry runs it: a coroutine (``run``) or a wait (``delay``)."""

    name: str  # ``<unit>.<verb>``
    unit: Unit
    run: HostOp | None
    delay: HostDelay | None


class Registry:
    """The units of one sandbox: names the guest sends → what runs them."""

    def __init__(self, settings: Settings, units: tuple[Unit, ...] = UNITS) -> None:
        self.settings = settings
        self.services = Services()  # filled in by the sandbox and the app (see Services)
        self.units = held(units)
        self.ops: dict[str, Entry] = {}
        self.calls: dict[str, HostCall] = {}
        if len({u.name for u in self.units}) != len(self.units):
            raise ValueError(f"two host units share a name: {[u.name for u in self.units]}")
        for unit in self.units:
            verbs = [*unit.calls, *unit.ops, *unit.delays]
            if len(set(verbs)) != len(verbs):
                raise ValueError(f"the {unit.name} unit declares one verb twice: {sorted(verbs)}")
            for name, verb in unit.verbs().items():
                if verb in unit.calls:
                    self.calls[name] = unit.calls[verb]
                else:
                    self.ops[name] = Entry(
                        f"{unit.name}.{verb}", unit, unit.ops.get(verb), unit.delays.get(verb)
                    )
        names = {u.name for u in self.units}
        self._absent = {
            name: unit for unit in UNITS if unit.name not in names for name in unit.verbs()
        }

    def grants(self, tenant: str, magic: MagicComments) -> Grants:
        """``grants_for`` the units held here (for callers that bring no ``Policy``)."""
        return grants_for(self.units, self.settings, tenant, magic)

    def op(self, name: str, grants: Grants) -> Entry:
        """The op ``name`` names, if the script's ``grants`` allow it; else ``Refused``."""
        entry = self.ops.get(name)
        if entry is not None and entry.unit.name in grants:
            return entry
        raise self._refusal(name, entry)

    def call(self, name: str) -> HostCall:
        """The call ``name`` names; calls are pure, so holding the unit is all they need."""
        fn = self.calls.get(name)
        if fn is None:
            raise self._refusal(name, None, "call")
        return fn

    async def run(self, entry: Entry, args: dict[str, Any], ctx: OpContext) -> tuple[bool, Any]:
        """Run an op: (True, its value) or (False, the error the script's promise rejects with)."""
        assert entry.run is not None
        unit = entry.unit
        if unit.request_state is not None and unit.name not in ctx.state:
            ctx.state[unit.name] = unit.request_state()
        try:
            return True, await entry.run(args, ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the script sees a rejected promise
            return False, error_value(exc)

    def _refusal(self, name: str, entry: Entry | None, kind: str = "operation") -> Refused:
        if entry is not None:
            unit = entry.unit
            return Refused(
                f"host operation {entry.name} refused: this script is not granted {unit.name} "
                f"({unit.granted_by})"
            )
        absent = self._absent.get(name)
        if absent is not None:
            return Refused(
                f"host {kind} {name!r} refused: this sandbox does not hold the {absent.name} "
                f"unit ({absent.granted_by})"
            )
        units = ", ".join(u.name for u in self.units)
        return Refused(f"unknown host {kind} {name!r}: no unit registers it (units: {units})")


def end_request(ctx: OpContext) -> None:
    """The request ``ctx`` asked for has ended: close the per-request state of its units that
    holds something (an ``aclose``), on the running loop."""
    closers = [c for state in ctx.state.values() if (c := getattr(state, "aclose", None))]
    if not closers:
        return
    ctx.state.clear()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no loop, so nothing of the request is running any more
        return
    for close in closers:
        loop.create_task(close())


def error_value(exc: Exception) -> str | dict[str, str]:
    """An op's failure as the guest takes it: a host refusal keeps its error name."""
    if isinstance(exc, HostError):
        return {"name": exc.js_name, "message": str(exc)}
    return str(exc) or type(exc).__name__


def answer(op_id: int, ok: bool, value: Any, blob: bytearray) -> dict[str, Any]:
    """An op's result for ``wx_resume`` (ABI.md): bytes go into ``blob``, referenced by offset."""
    if not ok:
        return {"id": op_id, "ok": False, "error": value}
    if isinstance(value, (bytes, bytearray)):
        ref = {"off": len(blob), "len": len(value)}
        blob += value
        return {"id": op_id, "ok": True, "value": ref, "bytes": True}
    return {"id": op_id, "ok": True, "value": value}
