"""What a script's response must be before any of it reaches the ASGI server.

A server trusts its application: granian's worker panics on a status of 0 or a header map of
40,000 names, and a CR in a value is a response-splitting attempt. So the status and headers a
script returns are checked here, in the same single pass that encodes them for the server, and a
response that breaks a rule is refused with a `ResponseRuleBroken` naming the rule.

Accepted header names are remembered (a bounded number of them): nearly every response repeats
the same few, and a name seen before costs one dict lookup.
"""

from __future__ import annotations

import re

STATUS_RULE = "a response status must be an integer 200–599"
NAME_RULE = "a header name must be an RFC 9110 token (letters, digits and !#$%&'*+-.^_`|~)"
VALUE_RULE = (
    "a header value must be latin-1 text without control characters (CR, LF, NUL and the other "
    "C0 controls or DEL; a tab is allowed)"
)

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
NAMES_REMEMBERED = 1024
"""Accepted header names kept, so a script sending random names cannot grow the cache."""
DROPPED = frozenset({
    "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
    "proxy-connection",
})
"""Framing and hop-by-hop headers: the server sets them for the body it actually sends."""


class ResponseRuleBroken(ValueError):
    """A script's response that cannot be sent; the message says which rule it breaks."""


class ResponseRules:
    """The checks for one process: its limits, and the names already accepted."""

    def __init__(self, max_headers: int, max_header_bytes: int) -> None:
        self.max_headers = max_headers
        self.max_header_bytes = max_header_bytes
        self._names: dict[str, bytes | None] = {}  # name as sent → lower-cased bytes; None: dropped

    def head(self, status: object, headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
        """The headers as the server takes them, once `status` and each header pass the rules."""
        if type(status) is not int or not 200 <= status <= 599:
            raise ResponseRuleBroken(f"status {status!r} is not a valid HTTP status: {STATUS_RULE}")
        if len(headers) > self.max_headers:
            raise ResponseRuleBroken(
                f"{len(headers)} headers is more than the limit of {self.max_headers} "
                "(WEXEC_MAX_RESPONSE_HEADERS)"
            )
        names = self._names
        raw = []
        size = 0
        try:
            for name, value in headers:
                encoded = names.get(name, b"")
                if encoded == b"":
                    encoded = self._accept_name(name)
                if value.isascii() and value.isprintable():
                    raw_value = value.encode("ascii")
                else:
                    raw_value = _slow_value(name, value)
                size += len(name) + len(value)
                if encoded is not None:
                    raw.append((encoded, raw_value))
        except ResponseRuleBroken:
            raise
        except (AttributeError, TypeError, ValueError):  # not a list of string pairs at all
            raise ResponseRuleBroken(
                f"headers must be pairs of strings, not {headers!r:.200}"
            ) from None
        if size > self.max_header_bytes:
            raise ResponseRuleBroken(
                f"the headers take {size} bytes, more than the limit of {self.max_header_bytes} "
                "(WEXEC_MAX_RESPONSE_HEADER_BYTES)"
            )
        return raw

    def _accept_name(self, name: str) -> bytes | None:
        if type(name) is not str or not name.isascii() or _TOKEN.fullmatch(name) is None:
            raise ResponseRuleBroken(f"header name {name!r:.100} is not valid: {NAME_RULE}")
        lower = name.lower()
        encoded = None if lower in DROPPED else lower.encode("ascii")
        if len(self._names) < NAMES_REMEMBERED:
            self._names[name] = encoded
        return encoded


def _slow_value(name: str, value: str) -> bytes:
    """A value with a tab or non-ASCII text: allowed if latin-1 and free of control characters."""
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ResponseRuleBroken(
            f"header {name!r} has {value[exc.start]!r} (U+{ord(value[exc.start]):04X}), which is "
            f"outside latin-1: {VALUE_RULE}; percent-encode it or use RFC 8187 encoding"
        ) from None
    bad = _CONTROL.search(value)
    if bad is not None:
        raise ResponseRuleBroken(
            f"header {name!r} has the control character {bad.group()!r} in its value: {VALUE_RULE}"
        )
    return raw
