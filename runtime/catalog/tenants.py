"""Tenants: who owns a request, and which folder of scripts answers it.

Scripts live under `{tenants_root}/{subdomain}/{execId}/`, as in the reference product. Without
`tenants_root` there is a single tenant, `default/1`, whose folder is `scripts` — so `wexec serve
--scripts DIR` serves one folder and `--tenants-root DIR` serves many. A request's tenant comes
from its Host header through `tenant_host_pattern`; a Host naming no known tenant gets the
default one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.types import DEFAULT_EXEC_ID, DEFAULT_SUBDOMAIN, DEFAULT_TENANT

if TYPE_CHECKING:
    from runtime.config import Settings

_SAFE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True, slots=True)
class Tenant:
    subdomain: str
    exec_id: str
    root: Path
    name: str = field(init=False, compare=False)
    """`default/1`: how the tenant appears in messages and host capabilities."""
    slug: str = field(init=False, compare=False)
    """`default-1`: the tenant in file names (its request log is `logs/default-1.log`)."""

    def __post_init__(self) -> None:
        # Made once: every request names its tenant twice.
        object.__setattr__(self, "name", f"{self.subdomain}/{self.exec_id}")
        object.__setattr__(self, "slug", f"{self.subdomain}-{self.exec_id}")


def is_tenant_name(name: str) -> bool:
    """Whether `name` can be a tenant's subdomain or exec id: lower-case letters, digits, `-`."""
    return _SAFE_NAME.match(name) is not None


def discover(settings: Settings, skipped: dict[str, str] | None = None) -> list[Tenant]:
    """Every tenant on disk; the default tenant always exists, even with no folder yet.

    Roots are resolved paths. A tenant folder (`{subdomain}` or `{execId}`) that is a link is
    not a tenant, wherever it leads: one tenant's name must never serve another's scripts.
    Link the whole tenants root instead to keep tenants elsewhere. What was left out, and why,
    goes into `skipped`.
    """
    if settings.tenants_root is None:
        return [Tenant(DEFAULT_SUBDOMAIN, DEFAULT_EXEC_ID, root_of(settings, DEFAULT_TENANT))]
    root = Path(os.path.realpath(settings.tenants_root))
    tenants = {(DEFAULT_SUBDOMAIN, DEFAULT_EXEC_ID): Tenant(
        DEFAULT_SUBDOMAIN, DEFAULT_EXEC_ID, root / DEFAULT_SUBDOMAIN / DEFAULT_EXEC_ID
    )}
    for sub in _subdirs(root, skipped):
        for exec_id in _subdirs(root / sub, skipped):
            tenants[(sub, exec_id)] = Tenant(sub, exec_id, root / sub / exec_id)
    return list(tenants.values())


def root_of(settings: Settings, name: str) -> Path:
    """The folder of the tenant ``name`` (``alice/1``), resolved, as ``discover`` finds it."""
    if settings.tenants_root is None:
        return Path(os.path.realpath(settings.scripts))
    return Path(os.path.realpath(settings.tenants_root), *name.split("/"))


def _subdirs(path: Path, skipped: dict[str, str] | None) -> list[str]:
    """Child folders whose names are safe tenant names (lower-case letters, digits, `-`)."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return []
    found = []
    for entry in entries:
        if not is_tenant_name(entry.name):
            continue
        try:
            if entry.is_symlink():
                if skipped is not None:
                    skipped[entry.path] = (
                        "a tenant folder that is a link is no tenant; link the tenants root instead"
                    )
            elif entry.is_dir(follow_symlinks=False):
                found.append(entry.name)
        except OSError:
            continue
    return found


class TenantResolver:
    """Host header → tenant, among the tenants currently known."""

    def __init__(self, pattern: str, tenants: list[Tenant]) -> None:
        self._pattern = re.compile(pattern, re.IGNORECASE)
        self._tenants = {(t.subdomain, t.exec_id): t for t in tenants}
        self.default = self._tenants[(DEFAULT_SUBDOMAIN, DEFAULT_EXEC_ID)]
        self._by_host: dict[str, Tenant] = {}

    @property
    def tenants(self) -> list[Tenant]:
        return list(self._tenants.values())

    def get(self, subdomain: str, exec_id: str) -> Tenant | None:
        """The tenant named so, if it is known."""
        return self._tenants.get((subdomain, exec_id))

    def resolve(self, host: str) -> Tenant:
        tenant = self._by_host.get(host)
        if tenant is None:
            tenant = self._lookup(host)
            if len(self._by_host) < 4096:  # bound the memo: Host is client-controlled
                self._by_host[host] = tenant
        return tenant

    def _lookup(self, host: str) -> Tenant:
        m = self._pattern.match(host)
        if m is None:
            return self.default
        groups = m.groupdict()
        sub = (groups.get("subdomain") or DEFAULT_SUBDOMAIN).lower()
        exec_id = (groups.get("exec_id") or DEFAULT_EXEC_ID).lower()
        return self._tenants.get((sub, exec_id), self.default)
