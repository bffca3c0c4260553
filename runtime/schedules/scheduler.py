"""`// @schedule <cron>`: runs each scheduled script at its ticks (UTC), once per tick across
every process serving the data dir, never overlapping itself.

The schedules follow the live catalog: a script that is served, enabled and carries `@schedule`
is registered; when it goes, or its directive does, it is removed. `sync` compares the catalog's
tables with what is registered; a tenant's table is a new object only when something in it
changed, so syncing every second costs a few identity checks.

Each tick is claimed in `ticks.Ticks` before it fires: with `--workers N` every process wakes,
one wins. A run holds `ticks.RunLock`: a tick that comes while the previous run still goes on is
skipped and recorded. At start-up, ticks that passed while no server ran are recorded as one
`missed` entry, never run. Every fire, skip and miss is a line in the tenant's `fires.log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from runtime.catalog.live import Catalog, Script, TenantScripts
from runtime.catalog.tenants import Tenant
from runtime.http.gateway import Gateway
from runtime.http.policy import Policy
from runtime.schedules.fires import FiresLog
from runtime.schedules.ticks import RunLock, Ticks
from runtime.schedules.times import count_ticks, iso, last_tick, next_tick

log = logging.getLogger("wexec.schedules")

STARTUP_GRACE = timedelta(seconds=2)
"""At start-up a tick this recent still fires rather than counting as missed: the processes of
one server start a moment apart, and the first up may already be firing it."""
MISSED_COUNT_CAP = 10_000
KEEP_TICKS = timedelta(days=7)
"""Claimed ticks are kept this long (each script's latest for ever: it dates a restart's
missed ticks)."""
PRUNE_EVERY = timedelta(hours=1)
MAX_SLEEP_S = 1.0
"""The loop wakes at least this often to notice scripts written or removed."""

Status = Literal["ok", "error", "timeout", "skipped", "missed"]
Key = tuple[str, str]  # (tenant name, script path relative to the tenant root)


@dataclass(frozen=True, slots=True)
class Registration:
    tenant: str
    script: str
    expression: str
    registered_at: datetime


@dataclass(frozen=True, slots=True)
class Diff:
    """What a sync changed (or, dry, would change), by script path: a changed expression is
    both removed and added."""

    added: list[str]
    kept: list[str]
    removed: list[str]


@dataclass(frozen=True, slots=True)
class Fire:
    """One attempt to run a script, as `fires.log` records it."""

    tenant: str
    script: str
    trigger: Literal["schedule", "manual"]
    status: Status
    run_id: str
    at: datetime
    tick: datetime | None = None
    duration_ms: float = 0.0
    http_status: int | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "ts": iso(self.at), "scriptRel": self.script, "trigger": self.trigger,
            "status": self.status, "runId": self.run_id, "tick": iso(self.tick) if self.tick else None,
            "durationMs": self.duration_ms, "httpStatus": self.http_status, "error": self.error,
            "pid": os.getpid(),
        }
        return record | self.extra


@dataclass(slots=True)
class Figures:
    """Cron figures of this process for `monitor/stats` (per process, like its other counters)."""

    registered: int = 0
    fired: int = 0
    skipped: int = 0
    failed: int = 0
    missed: int = 0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Scheduler:
    """Every tenant's schedules in this process; `serve()` is its loop, run by the lifespan."""

    def __init__(self, catalog: Catalog[Policy], gateway: Gateway, data_dir: Path,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self._catalog = catalog
        self._gateway = gateway
        self._folder = data_dir / "schedules"
        self._ticks = Ticks(self._folder / "ticks.sqlite")
        self._clock = clock
        self._registered: dict[Key, Registration] = {}
        self._next: dict[Key, datetime] = {}
        self._seen: dict[str, TenantScripts[Policy]] = {}
        self._tasks: set[asyncio.Task[Fire | None]] = set()
        self._figures = Figures()

    def figures(self) -> Figures:
        """This process's cron figures, for `monitor/stats`: schedules registered, runs that
        answered (`fired`), ticks skipped because a run was still going on, runs that failed or
        timed out, and start-ups that found missed ticks. Manual triggers count too."""
        return replace(self._figures)

    def fires(self, tenant: Tenant) -> FiresLog:
        return FiresLog(self._folder / tenant.slug)

    def registrations(self, tenant: str) -> list[tuple[Registration, datetime]]:
        """The tenant's schedules with their next tick, by script path."""
        return sorted(((reg, self._next[key]) for key, reg in self._registered.items()
                       if key[0] == tenant), key=lambda pair: pair[0].script)

    def running(self, tenant: str, script: str) -> bool:
        """Whether a run of `script` is going on, in any process."""
        lock = RunLock.take(self._folder / "running", tenant, script)
        if lock is None:
            return True
        lock.release()
        return False

    def sync(self, tenant: str | None = None, *, startup: bool = False) -> Diff:
        """Register what the catalog serves with `@schedule` and drop what it no longer does;
        `tenant` limits it to one tenant (compared even if its table looks unchanged)."""
        view = self._catalog.view
        if tenant is not None:
            names = [tenant]
        else:
            names = [name for name, table in view.tenants.items() if self._seen.get(name) is not table]
            names += [name for name in self._seen if name not in view.tenants]
        now = self._clock()
        total = Diff([], [], [])
        for name in names:
            table = view.tenants.get(name)
            wanted = _wanted(table.scripts) if table is not None else {}
            diff = self.plan(name, wanted)
            for script in diff.removed:
                del self._registered[name, script]
                del self._next[name, script]
            for script in diff.added:
                self._register(Registration(name, script, wanted[script], now), startup)
            if table is None:
                self._seen.pop(name, None)
            else:
                self._seen[name] = table
            total.added.extend(diff.added)
            total.kept.extend(diff.kept)
            total.removed.extend(diff.removed)
        self._figures.registered = len(self._registered)
        return total

    def plan(self, tenant: str, wanted: dict[str, str]) -> Diff:
        """What registering `wanted` (script path → expression) for `tenant` would change."""
        mine = {key[1]: reg.expression for key, reg in self._registered.items() if key[0] == tenant}
        kept = sorted(s for s, expression in mine.items() if wanted.get(s) == expression)
        return Diff(added=sorted(s for s in wanted if s not in kept),
                    kept=kept, removed=sorted(s for s in mine if s not in kept))

    def _register(self, reg: Registration, startup: bool) -> None:
        key = (reg.tenant, reg.script)
        self._registered[key] = reg
        base = reg.registered_at - STARTUP_GRACE if startup else reg.registered_at
        self._next[key] = next_tick(reg.expression, base)
        if startup:
            self._missed(reg, base)

    def _missed(self, reg: Registration, until: datetime) -> None:
        """Record, once across processes, the ticks that passed since the script last fired."""
        last = self._ticks.last(reg.tenant, reg.script)
        if last is None:
            return
        first = next_tick(reg.expression, last)
        if first > until:
            return
        if not self._ticks.claim(reg.tenant, reg.script, first, "missed"):
            return  # another process of this server recorded it
        final = last_tick(reg.expression, until)
        self._ticks.claim(reg.tenant, reg.script, final, "missed")
        count = count_ticks(reg.expression, first, final, MISSED_COUNT_CAP)
        self._figures.missed += 1
        self._record(reg.tenant, Fire(
            reg.tenant, reg.script, "schedule", "missed", uuid.uuid4().hex, self._clock(), final,
            error="the server was not running at these ticks; they are not run afterwards",
            extra={"missedTicks": count, "missedFrom": iso(first), "missedUntil": iso(final)}))

    def start_due(self, now: datetime) -> list[asyncio.Task[Fire | None]]:
        """Start every schedule due at `now` (the loop's clock, or a test's); answers the tasks.
        Ticks the loop slept through (a suspended process) fire once, as the latest of them."""
        started = []
        for key, due in list(self._next.items()):
            if due > now:
                continue
            reg = self._registered[key]
            tick = last_tick(reg.expression, now)
            self._next[key] = next_tick(reg.expression, tick)
            task = asyncio.create_task(self._fire(reg, tick))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started.append(task)
        return started

    async def _fire(self, reg: Registration, tick: datetime) -> Fire | None:
        try:
            if not await asyncio.to_thread(self._ticks.claim, reg.tenant, reg.script, tick,
                                           "fire"):
                return None  # another process of this server has this tick
            return await self.run(reg.tenant, reg.script, "schedule", tick)
        except Exception:  # a task nobody awaits: its failure is logged here or nowhere
            log.exception("%s/%s: firing the tick of %s failed", reg.tenant, reg.script, iso(tick))
            return None

    async def run(self, tenant_name: str, script: str, trigger: Literal["schedule", "manual"],
                  tick: datetime | None = None) -> Fire:
        """Run `script` now unless a run of it is going on (then the attempt is `skipped`);
        recorded in fires.log either way."""
        run_id = uuid.uuid4().hex
        at = self._clock()
        view = self._catalog.view
        table = view.tenants.get(tenant_name)
        served = table.scripts.get(script) if table is not None else None
        tenant = table.tenant if table is not None else None
        lock = RunLock.take(self._folder / "running", tenant_name, script)
        if lock is None:
            self._figures.skipped += 1
            fire = Fire(tenant_name, script, trigger, "skipped", run_id, at, tick,
                        error="the previous run of this script was still going on")
        elif served is None or tenant is None:
            lock.release()
            self._figures.failed += 1
            fire = Fire(tenant_name, script, trigger, "error", run_id, at, tick,
                        error=f"{script} is no longer served")
        else:
            t0 = time.perf_counter()
            try:
                status, error = await self._gateway.scheduled(tenant, served)
            finally:
                lock.release()
            duration = round((time.perf_counter() - t0) * 1000, 3)
            outcome: Status = "timeout" if status == 504 else (
                "error" if error is not None or status >= 500 else "ok")
            if outcome == "ok":
                self._figures.fired += 1
            else:
                self._figures.failed += 1
            fire = Fire(tenant_name, script, trigger, outcome, run_id, at, tick, duration,
                        status, error)
        if tenant is not None:
            await asyncio.to_thread(self._record, tenant_name, fire)
        return fire

    def _record(self, tenant_name: str, fire: Fire) -> None:
        tenant = self._catalog.view.resolver.get(*tenant_name.split("/", 1))
        if tenant is None:
            return
        try:
            self.fires(tenant).append(fire.record())
        except OSError:
            log.exception("%s/%s: recording a schedule's run failed", tenant_name, fire.script)

    def start(self) -> None:
        """Register what the catalog serves at start-up, recording missed ticks; blocking (it
        reads the tick store), so the lifespan runs it on a thread before anything else syncs."""
        self.sync(startup=True)
        self._ticks.prune(self._clock() - KEEP_TICKS)

    async def serve(self) -> None:
        """The schedules' loop, after `start`: sync with the catalog, start what is due, sleep
        until the next tick (at most `MAX_SLEEP_S`)."""
        pruned = self._clock()
        while True:
            now = self._clock()
            try:
                self.sync()
                self.start_due(now)
                if now - pruned >= PRUNE_EVERY:
                    pruned = now
                    await asyncio.to_thread(self._ticks.prune, now - KEEP_TICKS)
            except Exception:  # one bad entry must not stop every schedule for good
                log.exception("running schedules failed")
            soonest = min(self._next.values(), default=now + timedelta(seconds=MAX_SLEEP_S))
            delay = min(max((soonest - self._clock()).total_seconds(), 0.01), MAX_SLEEP_S)
            await asyncio.sleep(delay)

    async def close(self) -> None:
        """Stop firing; runs in flight are cancelled with the process's other requests."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            self._ticks.close()


def _wanted(scripts: dict[str, Script[Policy]]) -> dict[str, str]:
    """The served, enabled scripts that carry `@schedule`, with their expressions."""
    return {
        rel: script.artefact.magic.schedule
        for rel, script in scripts.items()
        if script.artefact is not None and script.artefact.magic.schedule is not None
        and script.policy is not None and script.policy.enabled
    }
