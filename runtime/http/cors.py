"""`@cors`: which browser origins may call a script, and the answer to their preflight.

`none` (the default) sends no CORS headers, so browsers keep other origins out; `*` allows any
origin without credentials; `reflective` mirrors the caller's Origin and allows credentials; an
origin allows only itself. CORS headers go on every answer, errors included, so a browser client
can read why its call failed.
"""

from __future__ import annotations

PREFLIGHT_MAX_AGE = "600"


def allow_headers(policy: str, origin: str | None) -> list[tuple[str, str]]:
    """Headers for an actual (non-preflight) response."""
    if policy == "none":
        return []
    if policy == "*":
        return [("access-control-allow-origin", "*")]
    if policy == "reflective":
        if not origin:
            return []
        return [
            ("access-control-allow-origin", origin),
            ("access-control-allow-credentials", "true"),
            ("vary", "Origin"),
        ]
    return [("access-control-allow-origin", policy), ("vary", "Origin")]


def is_preflight(method: str, headers: dict[str, str]) -> bool:
    return method == "OPTIONS" and "access-control-request-method" in headers


def preflight_headers(policy: str, headers: dict[str, str]) -> list[tuple[str, str]]:
    """What the answer to `OPTIONS` with `Access-Control-Request-Method` adds to the
    `allow_headers` every answer gets; empty when the origin is not allowed."""
    origin = headers.get("origin")
    if not allow_headers(policy, origin) or (policy not in ("*", "reflective") and origin != policy):
        return []
    out = [
        ("access-control-allow-methods", headers["access-control-request-method"]),
        ("access-control-max-age", PREFLIGHT_MAX_AGE),
    ]
    requested = headers.get("access-control-request-headers")
    if requested:
        out.append(("access-control-allow-headers", requested))
    return out
