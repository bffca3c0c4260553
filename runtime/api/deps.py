"""What a handler receives besides its own parameters: the services, the caller's access, and
the tenant it acts on.

Every endpoint names its tenant the reference's way, `execId` (or `exec_id`) and `subdomain`, in
the query or in the body, the query winning field by field. An `execId` alone means the
`default` subdomain; naming neither leaves the choice to the Host header, as for scripts, or
to the caller's token when it grants one tenant. A tenant the token does not grant is a 403.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from runtime.api.access import Access
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
TenantQuery = Annotated[str | None, Query(
    description="The tenant (execId, its alias exec_id, subdomain); the query wins over the "
    "body. Without any: a tenant token's tenant, else the Host header's.")]
"""How a handler declares the tenant's query parameters, so the OpenAPI document shows them
(`tenant_of` reads them from the request)."""

_bearer = HTTPBearer(
    auto_error=False,
    description="WEXEC_API_TOKEN (every tenant) or a tenant's API token (that tenant only). "
    "Without any token configured the API answers loopback clients on a loopback bind only.",
)


def authorize(request: Request,
              _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Access:
    """The caller's access, as `access.Guard` admitted it before the body was read (every
    router but the public ones depends on this, which also puts the scheme in the OpenAPI)."""
    return access_of(request)


AccessDep = Annotated[Access, Depends(authorize)]


def access_of(request: Request) -> Access:
    """The access `authorize` admitted for this call."""
    access: Access = request.state.access
    return access


class TenantFields(BaseModel):
    """The body fields that name a tenant, spelled as the reference spells them; a request
    body model that accepts them inherits this."""

    execId: str | None = Field(None, description="The tenant's exec id; the query's wins.")
    exec_id: str | None = Field(None, description="Alias of execId.")
    subdomain: str | None = Field(
        None, description="The tenant's subdomain (default: `default`); the query's wins."
    )


def tenant_of(request: Request, catalog: Catalog[Policy], body: TenantFields | None = None,
              *, create: bool = False) -> Tenant:
    """The tenant a management request acts on, or an HTTPError saying what to change.

    `create`: a tenant named but not on disk yet is returned anyway (a write makes its folder),
    when the server serves a tenants root.
    """
    access = access_of(request)
    query = request.query_params
    exec_id = _given("query", query.get("execId"), query.get("exec_id"))
    if exec_id is None and body is not None:
        exec_id = _given("body", body.execId, body.exec_id)
    subdomain = query.get("subdomain") or (body.subdomain if body is not None else None) or None
    if exec_id is None and subdomain is None:
        if access.tenant is not None:
            subdomain, _, exec_id = access.tenant.partition("/")
        else:
            hosted = catalog.view.resolver.resolve(request.headers.get("host", ""))
            access.check(hosted.name)
            return hosted
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
    access.check(f"{subdomain}/{exec_id}")  # before looking: a refusal says nothing of what exists
    tenant = catalog.view.resolver.get(subdomain, exec_id)
    root = services(request).settings.tenants_root if tenant is None and create else None
    if root is not None:
        return Tenant(subdomain, exec_id, Path(os.path.realpath(root)) / subdomain / exec_id)
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
