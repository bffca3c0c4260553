"""What a handler receives besides its own parameters: the services, and the tenant it acts on.

Every endpoint names its tenant the reference's way, `execId` (or `exec_id`) and `subdomain`, in
the query or in the body, the query winning field by field. An `execId` alone means the
`default` subdomain; naming neither leaves the choice to the Host header, as for scripts.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from pydantic import BaseModel, Field

from runtime.api.services import Services
from runtime.catalog.live import Catalog
from runtime.catalog.tenants import Tenant, is_tenant_name
from runtime.http.errors import HTTPError
from runtime.http.policy import Policy
from runtime.types import DEFAULT_SUBDOMAIN


def services(request: Request) -> Services:
    """The services the API app was built with (`api.app.build`)."""
    built: Services = request.app.state.services
    return built


ServicesDep = Annotated[Services, Depends(services)]


class TenantFields(BaseModel):
    """The body fields that name a tenant, spelled as the reference spells them; a request
    body model that accepts them inherits this."""

    execId: str | None = Field(None, description="The tenant's exec id; the query's wins.")
    exec_id: str | None = Field(None, description="Alias of execId.")
    subdomain: str | None = Field(
        None, description="The tenant's subdomain (default: `default`); the query's wins."
    )


def tenant_of(request: Request, catalog: Catalog[Policy], body: TenantFields | None = None
              ) -> Tenant:
    """The tenant a management request acts on, or an HTTPError saying what to change."""
    query = request.query_params
    exec_id = _given("query", query.get("execId"), query.get("exec_id"))
    if exec_id is None and body is not None:
        exec_id = _given("body", body.execId, body.exec_id)
    subdomain = query.get("subdomain") or (body.subdomain if body is not None else None) or None
    if exec_id is None and subdomain is None:
        return catalog.view.resolver.resolve(request.headers.get("host", ""))
    if exec_id is None:
        raise HTTPError(
            400, "invalid_tenant",
            f"subdomain={subdomain} names no tenant without an execId; add one (e.g. execId=1)",
            subdomain=subdomain,
        )
    subdomain = (subdomain or DEFAULT_SUBDOMAIN).lower()
    exec_id = exec_id.lower()
    for field, value in (("subdomain", subdomain), ("execId", exec_id)):
        if not is_tenant_name(value):
            raise HTTPError(
                400, "invalid_tenant",
                f"{field}={value!r} cannot name a tenant: use lower-case letters, digits and '-', "
                "starting with a letter or digit",
                field=field, value=value,
            )
    tenant = catalog.view.resolver.get(subdomain, exec_id)
    if tenant is None:
        raise HTTPError(
            404, "unknown_tenant",
            f"no tenant {subdomain}/{exec_id} on this server; check subdomain and execId (a "
            f"tenant exists once its folder {subdomain}/{exec_id} exists under the tenants root)",
            tenant=f"{subdomain}/{exec_id}",
        )
    return tenant


def _given(where: str, camel: str | None, snake: str | None) -> str | None:
    """The exec id from one place (`query` or `body`), which may spell it both ways alike."""
    if camel and snake and camel != snake:
        raise HTTPError(
            400, "invalid_tenant",
            f"execId={camel} and exec_id={snake} in the {where} disagree; give one of them",
            execId=camel, exec_id=snake,
        )
    return camel or snake or None
