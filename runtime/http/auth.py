"""`@token`: a shared secret the caller must present, compared in constant time.

The token is accepted as `Authorization: Bearer <t>`, as the password of `Authorization: Basic`,
as an `X-Token` header, or as `?token=`. Only SHA-256 digests are compared, so neither the length
nor the bytes of the secret leak through timing. A request that carried the token has it removed
before the script sees it, and `Redactor` scrubs it from anything written out.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

REDACTED = "[REDACTED]"
CREDENTIAL_HEADERS = ("authorization", "x-token")


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def presented(headers: dict[str, str], query: dict[str, str | list[str]]) -> list[str]:
    """Every candidate token in the request, in the order they are checked."""
    found: list[str] = []
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer":
        found.append(value.strip())
    elif scheme.lower() == "basic":
        try:
            _, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            found.append(password)
        except (binascii.Error, UnicodeDecodeError):
            pass
    if "x-token" in headers:
        found.append(headers["x-token"])
    q = query.get("token")
    if isinstance(q, str):
        found.append(q)
    elif q:
        found.extend(q)
    return found


def check(expected: bytes, headers: dict[str, str], query: dict[str, str | list[str]]) -> bool:
    """True when any presented token's digest equals `expected` (every candidate is compared)."""
    ok = False
    for candidate in presented(headers, query):
        ok |= hmac.compare_digest(digest(candidate), expected)
    return ok


def strip_credentials(
    headers: dict[str, str], query: dict[str, str | list[str]], url: str
) -> tuple[dict[str, str], dict[str, str | list[str]], str]:
    """The request as the script may see it: without the token in headers, query or URL."""
    headers = {k: v for k, v in headers.items() if k not in CREDENTIAL_HEADERS}
    if "token" not in query:
        return headers, query, url
    query = {k: v for k, v in query.items() if k != "token"}
    base, _, qs = url.partition("?")
    kept = "&".join(
        part for part in qs.split("&") if not part.startswith("token=") and part != "token"
    )
    return headers, query, f"{base}?{kept}" if kept else base


class Redactor:
    """Replaces a script's secrets (its token, and what was presented) in text written out."""

    def __init__(self, secrets: list[str]) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


def request_secrets(headers: dict[str, str], query: dict[str, str | list[str]]) -> list[str]:
    """Credentials a request carried, whether or not they were right: never to be logged."""
    if "token" not in query and headers.keys().isdisjoint(CREDENTIAL_HEADERS):
        return []  # most requests: nothing to look through
    secrets = presented(headers, query)
    secrets.extend(headers[h] for h in CREDENTIAL_HEADERS if h in headers)
    return secrets
