"""Who may call the management API: it can rewrite code, so it is never open by accident.

- `WEXEC_API_TOKEN` grants every tenant; each of `WEXEC_API_TENANT_TOKENS` grants one tenant, and
  a call it makes for any other tenant is refused (403) whatever `execId`/`subdomain` it names.
- With neither configured, the API answers only loopback clients, and only on a loopback bind:
  local development. `wexec serve` refuses another address without a token
  (`tokens.refusal_to_serve`).

Tokens are presented as scripts present their `@token` (`http.auth.credentials`: Bearer, the
Basic password, `X-Token`, `?token=`). Only SHA-256 digests are compared, each in constant time
and every configured one each time, so neither a token's bytes nor which tenant it belongs to
leak through timing. Tenant tokens are kept as their digests: API tokens are random secrets, not
passwords, so a slow salted hash would only cost every call time without protecting anything.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from runtime.api.tokens import HASH_PREFIX, is_loopback
from runtime.config import Settings
from runtime.http.auth import credentials, digest
from runtime.http.errors import HTTPError
from runtime.types import Query


@dataclass(frozen=True, slots=True)
class Access:
    """What one call may act on: every tenant (`tenant` None) or the one named."""

    tenant: str | None

    def check(self, tenant: str) -> None:
        """403 unless this call may act on `tenant` (its name, `alice/1`)."""
        if self.tenant is not None and self.tenant != tenant:
            raise HTTPError(
                403, "forbidden",
                f"this token grants tenant {self.tenant} only, not {tenant}; use that tenant's "
                "token or WEXEC_API_TOKEN",
                tenant=tenant,
            )

    def check_all(self, what: str) -> None:
        """403 unless this call may act on every tenant (`what` says what needs it)."""
        if self.tenant is not None:
            raise HTTPError(
                403, "forbidden",
                f"{what} acts on every tenant, and this token grants tenant {self.tenant} only; "
                "use WEXEC_API_TOKEN",
            )


class Gatekeeper:
    """Decides every call's `Access` from the settings' tokens and the request."""

    def __init__(self, settings: Settings) -> None:
        self._all = digest(settings.api_token) if settings.api_token else None
        self._tenants = [(tenant, bytes.fromhex(hashed.removeprefix(HASH_PREFIX)))
                         for tenant, hashed in settings.api_tenant_tokens.items()]
        self._host = settings.host
        self.open = self._all is None and not self._tenants
        """No token configured: loopback only."""

    def admit(self, headers: dict[str, str], query: Query, client: str | None) -> Access:
        """The call's access, or the HTTPError (401, 403) that says how to get some."""
        if self.open:
            if is_loopback(self._host) and client is not None and is_loopback(client):
                return Access(None)
            raise HTTPError(
                403, "forbidden",
                "the management API has no token configured, so it answers only loopback "
                f"clients on a loopback bind (this server listens on {self._host}, the call "
                f"came from {client or 'an unknown address'}); set WEXEC_API_TOKEN and send it "
                "as 'Authorization: Bearer <token>'",
            )
        presented = credentials(headers, query, "").presented
        if not presented:
            raise _unauthorized("this endpoint needs a token: send 'Authorization: Bearer "
                                "<token>' with WEXEC_API_TOKEN or the tenant's API token")
        granted: Access | None = None
        for candidate in map(digest, presented):
            if self._all is not None and hmac.compare_digest(candidate, self._all):
                granted = Access(None)
            for tenant, expected in self._tenants:
                if hmac.compare_digest(candidate, expected) and granted is None:
                    granted = Access(tenant)
        if granted is None:
            raise _unauthorized("the token presented is not WEXEC_API_TOKEN nor any tenant's "
                                "API token; check it (tenant tokens are configured as their "
                                "hash: `wexec token hash`)")
        return granted


def _unauthorized(message: str) -> HTTPError:
    return HTTPError(401, "unauthorized", message, [("www-authenticate", 'Bearer realm="wexec"')])
