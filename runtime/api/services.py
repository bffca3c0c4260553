"""What the management API's handlers work with: the process's parts, typed, built once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from runtime.catalog.live import Catalog
from runtime.catalog.tenants import Tenant
from runtime.config import Settings
from runtime.http.limits import LoadShedder
from runtime.http.policy import Policy
from runtime.observe.access_log import AccessLog
from runtime.observe.metrics import Metrics
from runtime.sandbox import Sandbox
from runtime.schedules import Diff, Scheduler


@dataclass(frozen=True, slots=True)
class Services:
    """The parts the process's lifespan builds, handed to the API app when it is built.

    One typed object instead of attributes set on `app.state`: mypy checks every handler's use,
    and a handler cannot run before the parts exist (the API app is built after them).
    """

    settings: Settings
    catalog: Catalog[Policy]
    sandbox: Sandbox
    shedder: LoadShedder
    access_log: AccessLog
    metrics: Metrics
    schedules: Scheduler

    async def publish(self, tenant: Tenant, *paths: str) -> Diff:
        """Serve what the API just changed in `tenant` before answering: its files are compiled
        now, not after the reload interval, so the next request runs the new version."""
        for path in paths:
            self.sandbox.compiler.invalidate(tenant.root, path)
        retired = await asyncio.to_thread(
            self.catalog.refresh, tenant=tenant.name, touched=frozenset(paths))
        for key in retired:
            self.sandbox.evict(key)
        return self.schedules.sync(tenant.name)
