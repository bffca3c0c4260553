"""Token settings as the command line sees them, before any server (or sandbox) is loaded:
hashing a tenant token for `WEXEC_API_TENANT_TOKENS`, and whether `wexec serve` may start."""

from __future__ import annotations

import hashlib
import ipaddress

from runtime.config import Settings

HASH_PREFIX = "sha256:"


def hash_token(token: str) -> str:
    """A tenant token as `WEXEC_API_TENANT_TOKENS` stores it."""
    return HASH_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def is_loopback(host: str) -> bool:
    """Whether an address (or `localhost`) can only be reached from this machine."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def refusal_to_serve(settings: Settings) -> str | None:
    """Why `wexec serve` must not start with these settings, or None."""
    if settings.api_token or settings.api_tenant_tokens or is_loopback(settings.host):
        return None
    return (f"refusing to serve on {settings.host}: the management API (/api/v1/exec/) can "
            "rewrite scripts, and no token protects it. Set WEXEC_API_TOKEN to a long random "
            "secret (e.g. `export WEXEC_API_TOKEN=$(python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))')`) and send it as 'Authorization: Bearer <token>', "
            "or give tenants their own tokens in WEXEC_API_TENANT_TOKENS (`wexec token hash`); "
            "or listen on 127.0.0.1")
