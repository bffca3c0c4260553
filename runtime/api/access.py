"""Who may call the management API: it can rewrite code, so it is never open by accident.

- `WEXEC_API_TOKEN` grants every tenant; each of `WEXEC_API_TENANT_TOKENS` grants one tenant, and
  a call it makes for any other tenant is refused (403) whatever `execId`/`subdomain` it names.
- With neither configured, the API answers only loopback clients, and only on a loopback bind:
  local development. `wexec serve` refuses another address without a token
  (`tokens.refusal_to_serve`).

`Guard` decides before anything else happens, the body included: a caller without a token
cannot make the server read (or hold) a large body. Tokens are presented as scripts present their `@token` (`http.auth.credentials`: Bearer, the
Basic password, `X-Token`, `?token=`). Only SHA-256 digests are compared, each in constant time
and every configured one each time, so neither a token's bytes nor which tenant it belongs to
leak through timing. Tenant tokens are kept as their digests: API tokens are random secrets, not
passwords, so a slow salted hash would only cost every call time without protecting anything.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.api.tokens import HASH_PREFIX, is_loopback
from runtime.config import Settings
from runtime.http.auth import credentials, digest
from runtime.http.errors import HTTPError
from runtime.http.limits import read_body
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


class Guard:
    """The API app behind its gatekeeper: every call but the `public` paths is admitted (or
    refused) from its head alone, then its body is read, up to `max_body` bytes, before the app
    sees it. The access admitted goes into the request's state for `deps.tenant_of`."""

    def __init__(self, app: ASGIApp, gatekeeper: Gatekeeper, max_body: int,
                 public: frozenset[str]) -> None:
        self.app, self.gatekeeper, self.max_body, self.public = app, gatekeeper, max_body, public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            if scope["path"][len(scope.get("root_path", "")):] not in self.public:
                query: Query = {k: v[0] if len(v) == 1 else v for k, v in
                                parse_qs(scope["query_string"].decode("latin-1")).items()}
                client = scope.get("client")
                access = self.gatekeeper.admit(headers, query, client[0] if client else None)
                scope.setdefault("state", {})["access"] = access
            body = await read_body(receive, headers.get("content-length"), self.max_body)
        except HTTPError as err:
            await _answer(send, err)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()  # after the body: a disconnect, when it comes
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _answer(send: Send, err: HTTPError) -> None:
    body = err.body()
    head = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in err.headers]
    await send({"type": "http.response.start", "status": err.status,
                "headers": [*head, (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
