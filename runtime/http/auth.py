"""`@token`: a shared secret the caller must present, compared in constant time.

The token is accepted as `Authorization: Bearer <t>`, as the password of `Authorization: Basic`,
as an `X-Token` header, or as a `token` query parameter. `credentials` is the one place that
reads a request for them: what it finds is what `accepts` compares, what the request log
redacts, and exactly what is taken out of the request before the script sees it, so a
credential accepted in one spelling can never be left behind in another. Only SHA-256 digests
are compared, so neither the length nor the bytes of the secret leak through timing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import parse_qsl

from runtime.observe.redact import CREDENTIAL_HEADERS
from runtime.types import Query

TOKEN_PARAMETER = "token"
"""The query parameter, matched after percent- and `+`-decoding and in any case."""


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a request presented as a token, and the request without any of it."""

    presented: list[str]
    headers: dict[str, str]
    query: Query
    url: str


def credentials(
    headers: dict[str, str], query: Query, url: str
) -> Credentials:
    """Every token candidate in the request, and the request with every credential removed.

    `query` is the URL's query string decoded by `parse_qsl`; the URL is rewritten part by part
    with that same decoding, so `?%74oken=`, `?TOKEN=` and `?token=` are all found and all go.
    """
    found: list[str] = []
    auth = headers.get("authorization", "")
    scheme, _, value = auth.strip().partition(" ")
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
    rest: Query = {}
    for key, values in query.items():
        if _is_token_parameter(key):
            found.extend([values] if isinstance(values, str) else values)
        else:
            rest[key] = values
    if len(rest) < len(query):
        query = rest
        base, _, qs = url.partition("?")
        kept = "&".join(part for part in qs.split("&") if not _names_token(part))
        url = f"{base}?{kept}" if kept else base
    if not headers.keys().isdisjoint(CREDENTIAL_HEADERS):
        headers = {k: v for k, v in headers.items() if k not in CREDENTIAL_HEADERS}
    return Credentials(found, headers, query, url)


def _is_token_parameter(key: str) -> bool:
    return key.lower() == TOKEN_PARAMETER


def _names_token(part: str) -> bool:
    """Whether one `&`-separated part of a query string is the token, decoded as `query` was."""
    pairs = parse_qsl(part, keep_blank_values=True)
    return bool(pairs) and _is_token_parameter(pairs[0][0])


def accepts(expected: bytes, presented: list[str]) -> bool:
    """True when any presented token's digest equals `expected` (every candidate is compared)."""
    ok = False
    for candidate in presented:
        ok |= hmac.compare_digest(digest(candidate), expected)
    return ok


def request_secrets(headers: dict[str, str], query: Query) -> list[str]:
    """Credentials a request carried, whether or not they were right: never to be logged."""
    if headers.keys().isdisjoint(CREDENTIAL_HEADERS) and not any(map(_is_token_parameter, query)):
        return []  # most requests: nothing to look through
    secrets = credentials(headers, query, "").presented
    secrets.extend(headers[h] for h in CREDENTIAL_HEADERS if h in headers)
    return secrets
