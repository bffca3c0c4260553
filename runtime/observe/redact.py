"""Keeping secrets out of text written out: request logs, error answers, the server's log.

A secret is a script's `@token` and secret directives, or a credential a request carried; it
is replaced wherever it appears, raw or escaped inside a JSON string. It lives here, beside the
request log, so the HTTP layer and the log share it without depending on each other.
"""

from __future__ import annotations

import json
import re

REDACTED = "[REDACTED]"
CREDENTIAL_HEADERS = ("authorization", "x-token")
"""Request headers that carry credentials: never logged, never passed to a script."""
COOKIE_SECRET_CHARS = 6
"""Cookie values this long or longer are hidden wherever they appear; shorter ones (`1`, `en`,
`true`) carry no secret, and hiding them would hide every such word in a log line."""
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)+)"')


def secret_forms(secret: str) -> list[str]:
    """A secret as it may appear in text: raw, and escaped inside a JSON string."""
    return [secret, json.dumps(secret)[1:-1]]


def cookie_values(header: str) -> list[str]:
    """The values of a `Cookie` header worth hiding (session ids, tokens), and the header whole."""
    values = [header]
    for pair in header.split(";"):
        value = pair.partition("=")[2].strip().strip('"')
        if len(value) >= COOKIE_SECRET_CHARS:
            values.append(value)
    return values


class Redactor:
    """Replaces a script's secrets (its token, and what was presented) in text written out."""

    def __init__(self, secrets: list[str]) -> None:
        forms = {form for s in secrets if s for form in secret_forms(s)}
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def quoting_source(self, text: str) -> str:
        """`text` that quotes source code (a compile error): a quoted piece that is part of a
        secret goes too, as esbuild quotes the one word it stopped at (`found "sk"` of `sk-1`)."""
        return _QUOTED.sub(self._quoted, self(text))

    def _quoted(self, match: re.Match[str]) -> str:
        piece = match.group(1)
        return f'"{REDACTED}"' if any(piece in secret for secret in self._secrets) else match.group(0)
