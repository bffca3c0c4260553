"""The live view of every tenant's scripts: routes and compiled artefacts, kept in step with disk.

`refresh()` runs off the event loop: it scans each tenant's folder, compiles what changed and
builds new immutable tables, then swaps them in with one assignment, so a request sees either the
old view or the new one, never a mix. A changed file is compiled only once it has been left alone
for `reload_interval_ms`, and its new artefact replaces the old only if it compiles: a script
being rewritten is never served half-written.

What is not served (a link out of the tenant, a loop, a name that is no route, a tenant folder
that is a link) is warned about once, not on every scan, and again only if it comes back after
being fixed. Each tenant is refreshed on its own: nothing in one tenant's folder can stop the
others, or start-up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from runtime.catalog.routes import Route, RouteError, RouteTable, Stat, route_for, scan
from runtime.catalog.tenants import Tenant, TenantResolver, discover
from runtime.compiler import CompileError
from runtime.compiler.packages import packages_stamp
from runtime.config import Settings
from runtime.observe.redact import Redactor
from runtime.types import Query

if TYPE_CHECKING:
    from runtime.compiler import Artefact

log = logging.getLogger("wexec.catalog")

P = TypeVar("P")
"""What the server derives from each compiled version (`http.policy.Policy`); the catalog only
keeps it, so it needs nothing from the HTTP layer that reads it."""


@dataclass(slots=True)
class Script(Generic[P]):
    """One route's current version: an artefact ready to run, or the error that stops it."""

    route: Route
    stat: Stat
    artefact: Artefact | None = None
    error: Exception | None = None  # compile or magic-comment error, answered as a 500
    policy: P | None = None  # what `policy_of` derived from the artefact, once per version


@dataclass(slots=True)
class TenantScripts(Generic[P]):
    tenant: Tenant
    table: RouteTable
    scripts: dict[str, Script[P]]  # by path relative to the tenant root
    tried: dict[str, Stat] = field(default_factory=dict)  # last version that failed to compile
    packages: tuple[int, ...] = ()  # compiler.packages.packages_stamp when these were compiled


@dataclass(frozen=True, slots=True)
class View(Generic[P]):
    resolver: TenantResolver
    tenants: dict[str, TenantScripts[P]]  # by tenant name


class Catalog(Generic[P]):
    """Resolves (Host, path) to a script and keeps every tenant's scripts current."""

    def __init__(
        self,
        settings: Settings,
        compile_file: Callable[[Path, str], Artefact],
        policy_of: Callable[[str, str, Artefact], P],
    ) -> None:
        self._settings = settings
        self._compile = compile_file
        self._policy_of = policy_of
        self._settle_ns = settings.reload_interval_ms * 1_000_000
        self._warned: set[str] = set()
        self._refreshing = threading.Lock()  # the reload loop and the API's writes, one at a time
        self._view: View[P] = View(TenantResolver(settings.tenant_host_pattern, discover(settings)), {})

    @property
    def view(self) -> View[P]:
        return self._view

    def lookup(
        self, host: str, path: str, tenant_name: str | None = None
    ) -> tuple[Tenant, Script[P] | None, Query]:
        """The tenant ``host`` names (or, for a request made in-process, ``tenant_name``) and
        its script for ``path``."""
        view = self._view
        if tenant_name is None:
            tenant = view.resolver.resolve(host)
        else:
            subdomain, _, exec_id = tenant_name.partition("/")
            tenant = view.resolver.get(subdomain, exec_id) or view.resolver.default
        scripts = view.tenants.get(tenant.name)
        if scripts is not None:
            hit = scripts.table.match(path)
            if hit is not None:
                route, params = hit
                return tenant, scripts.scripts[route.rel], params
        return tenant, None, {}

    def refresh(self, *, initial: bool = False, tenant: str | None = None,
                touched: frozenset[str] = frozenset()) -> set[str]:
        """Bring the view up to date with disk; returns artefact keys nobody serves any more.

        `initial` compiles every file at once instead of waiting for it to settle: at start-up
        nobody is expected to be writing. `tenant` refreshes that tenant alone (and any new
        one), compiling its files at once: the management API wrote them, atomically. Its
        `touched` paths are read again even if their modification time and size look
        unchanged (two writes within one clock tick).
        """
        with self._refreshing:
            return self._refresh(initial, tenant, touched)

    def _refresh(self, initial: bool, eager: str | None, touched: frozenset[str]) -> set[str]:
        old = self._view
        now = time.time_ns()
        skipped: dict[str, str] = {}
        tenants = discover(self._settings, skipped)
        problems = {f"{path}: {why}" for path, why in skipped.items()}
        fresh: dict[str, TenantScripts[P]] = {}
        for tenant in tenants:
            prev = old.tenants.get(tenant.name)
            if eager is not None and tenant.name != eager and prev is not None:
                fresh[tenant.name] = prev  # the API changed one tenant: the loop does the rest
                continue
            try:
                fresh[tenant.name] = self._refresh_tenant(
                    tenant, prev, now, initial or tenant.name == eager,
                    touched if tenant.name == eager else frozenset(), problems)
            except Exception as exc:  # noqa: BLE001 - one tenant must never stop the others
                problems.add(f"{tenant.name}: re-reading its scripts failed: {exc!r}")
                if prev is not None:
                    fresh[tenant.name] = prev
        resolver = old.resolver
        if {t.name for t in resolver.tenants} != {t.name for t in tenants}:
            resolver = TenantResolver(self._settings.tenant_host_pattern, tenants)
        self._view = View(resolver, fresh)
        for problem in sorted(problems - self._warned):
            log.warning("%s", problem)
        # one tenant's refresh saw only its own problems: the others' stay warned about
        self._warned = problems if eager is None else self._warned | problems
        return _keys(old) - _keys(self._view)

    def _refresh_tenant(
        self, tenant: Tenant, prev: TenantScripts[P] | None, now: int, initial: bool,
        touched: frozenset[str], problems: set[str],
    ) -> TenantScripts[P]:
        found = scan(tenant.root, self._settings.max_tenant_entries)
        problems.update(f"{tenant.name}/{rel}: {why}; not served" for rel, why in found.skipped.items())
        on_disk = found.found
        stamp = packages_stamp(tenant.root)
        if prev is not None and prev.packages != stamp:
            touched = frozenset(on_disk)  # packages installed (maybe by another process)
        before = prev.scripts if prev is not None else {}
        tried = dict(prev.tried) if prev is not None else {}
        scripts: dict[str, Script[P]] = {}
        changed = False
        for rel, stat in on_disk.items():
            current = before.get(rel)
            if current is not None and current.stat == stat and rel not in touched:
                scripts[rel] = current
                continue
            settled = initial or now - stat[0] >= self._settle_ns
            if not settled or (tried.get(rel) == stat and rel not in touched):
                if current is not None:
                    scripts[rel] = current  # keep serving the last good version meanwhile
                continue
            script = self._load(tenant, rel, stat, problems)
            if script is None:
                continue
            if script.artefact is None and current is not None and current.artefact is not None:
                tried[rel] = stat
                log.warning("%s/%s: keeping the previous version: %s", tenant.name, rel,
                            shown(script.error))
                scripts[rel] = current
                continue
            tried.pop(rel, None)
            scripts[rel] = script
            changed = True
        tried = {rel: stat for rel, stat in tried.items() if rel in on_disk}
        if prev is not None and not changed and scripts.keys() == before.keys() \
                and tried == prev.tried and stamp == prev.packages:
            return prev
        table = RouteTable([s.route for s in scripts.values()])
        return TenantScripts(tenant, table, scripts, tried, stamp)

    def _load(self, tenant: Tenant, rel: str, stat: Stat, problems: set[str]) -> Script[P] | None:
        try:
            route = route_for(rel)
        except RouteError as exc:
            problems.add(f"{tenant.name}/{exc}; not served")
            return None
        try:
            compiled = self._compile(tenant.root, rel)
            # The compiler keys artefacts by content, and the sandbox keeps one worker instance
            # per key: scoping the key to tenant and file keeps identical scripts apart.
            artefact = replace(compiled, key=f"{tenant.name}/{rel}@{compiled.key}")
            policy = self._policy_of(tenant.name, rel, artefact)
        except FileNotFoundError:
            return None  # deleted since the scan: the next scan drops its route
        except OSError as exc:  # e.g. swapped for a link out of the tenant since the scan
            problems.add(f"{tenant.name}/{rel}: cannot be read: {exc}; not served")
            return None
        except CompileError as exc:
            return Script(route, stat, error=exc)
        except Exception as exc:  # one unexpected failure must not block every other script
            log.exception("%s/%s: compiling failed", tenant.name, rel)
            return Script(route, stat, error=exc)
        return Script(route, stat, artefact, policy=policy)


def _keys(view: View[P]) -> set[str]:
    return {
        s.artefact.key
        for t in view.tenants.values()
        for s in t.scripts.values()
        if s.artefact is not None
    }


def shown(error: Exception | None) -> str:
    """An error's text with the script's secrets taken out, for the server's own log."""
    secrets = error.secrets if isinstance(error, CompileError) else None
    text = str(error)
    return Redactor(list(secrets.values)).quoting_source(text) if secrets is not None else text
