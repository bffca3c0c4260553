"""`cache/clear`: drop what the server keeps for a tenant's scripts, so the next request starts cold.

The reference keys its VM cache by hostname; so does this: `hostname` names the tenant as a
request's Host header would (`alice-1.example.com` → alice/1). Clearing the VMs drops the
tenant's worker instances (module state and all) and serverless images, and forgets its
compiled-file memo; the next request loads each script afresh.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from runtime.api.deps import ServicesDep, TenantFields, TenantQuery, access_of, tenant_of
from runtime.catalog.tenants import Tenant
from runtime.http.errors import HTTPError


class ClearBody(TenantFields):
    hostname: str | None = Field(None, description="The tenant, as a request's Host header "
                                 "names it; without it, execId/subdomain (or the token's).")
    scriptPath: str | None = Field(
        None, description="⚠️ DEPRECATED: scriptPath-based clear returns HTTP 400. VM cache is "
        "keyed by hostname. Use hostname or clearAll=true instead.")
    clearVm: bool = Field(True, description="Drop worker instances and serverless images.")
    clearState: bool = Field(False, description="Also clear the tenant's shared state.")
    clearAll: bool = Field(False, description="Every tenant (needs WEXEC_API_TOKEN).")


class Cleared(BaseModel):
    success: Literal[True] = True
    tenants: list[str] = Field(description="The tenants cleared.")
    vm: bool = Field(description="Worker instances and serverless images were dropped.")
    scripts: int = Field(description="Scripts whose instances and images were dropped.")
    state: bool = Field(description="Shared state was cleared.")
    notes: list[str] = []


router = APIRouter(prefix="/cache", tags=["cache"])


@router.post("/clear", summary="Clear Cache")
async def clear(request: Request, services: ServicesDep, body: ClearBody | None = None,
                execId: TenantQuery = None, exec_id: TenantQuery = None,
                subdomain: TenantQuery = None) -> Cleared:
    """Drop one tenant's (or, with clearAll, every tenant's) worker instances and serverless
    images; in-flight requests finish on the instance they hold. Shared state is cleared only
    when asked (clearState)."""
    body = body or ClearBody()
    if body.scriptPath is not None:
        raise HTTPError(400, "deprecated", "scriptPath-based clear is deprecated: the VM cache "
                        "is keyed by hostname; use hostname or clearAll=true instead",
                        scriptPath=body.scriptPath)
    tenants: list[Tenant]
    if body.clearAll:
        access_of(request).check_all("cache/clear with clearAll")
        tenants = services.catalog.view.resolver.tenants
    elif body.hostname:
        tenant = services.catalog.view.resolver.resolve(body.hostname)
        access_of(request).check(tenant.name)
        tenants = [tenant]
    else:
        tenants = [tenant_of(request, services.catalog, body)]
    notes = []
    scripts = 0
    if body.clearVm:
        view = services.catalog.view
        for tenant in tenants:
            services.sandbox.compiler.invalidate(tenant.root)
            served = view.tenants.get(tenant.name)
            for script in served.scripts.values() if served is not None else ():
                if script.artefact is not None:
                    services.sandbox.evict(script.artefact.key)
                    scripts += 1
    if body.clearState:
        notes.append("shared state is not kept by this server yet: nothing to clear")
    return Cleared(tenants=[t.name for t in tenants], vm=body.clearVm, scripts=scripts,
                   state=False, notes=notes)
