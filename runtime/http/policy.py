"""A script's magic comments turned, once per compiled version, into what each request enforces."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runtime.config import Settings
from runtime.http.auth import Redactor, digest
from runtime.http.limits import FifoLimiter

if TYPE_CHECKING:
    from runtime.compiler import Artefact


@dataclass(frozen=True, slots=True)
class Policy:
    script: str
    cors: str
    token_digest: bytes | None
    secrets: tuple[str, ...]  # never written out: a request's log and errors redact them
    redactor: Redactor | None  # for `secrets` alone; None when there are none
    timeout_ms: int | None  # None: no limit
    limiter: FifoLimiter | None  # None: unlimited concurrency
    log_level: str
    log_request_body: bool
    enabled: bool


def secret_forms(secret: str) -> list[str]:
    """A secret as it may appear in text: raw, and escaped inside a JSON string."""
    return [secret, json.dumps(secret)[1:-1]]


def prepare(tenant: str, script: str, artefact: Artefact, settings: Settings) -> Policy:
    """`script` is the path relative to the root of `tenant`, as errors and logs name it."""
    magic = artefact.magic
    secrets: list[str] = []
    for secret in (magic.token, magic.ai_key):
        if secret is not None:
            secrets.extend(secret_forms(secret.get_secret_value()))
    token = magic.token.get_secret_value() if magic.token is not None else None
    return Policy(
        script=script,
        cors=magic.cors,
        token_digest=digest(token) if token is not None else None,
        secrets=tuple(secrets),
        redactor=Redactor(secrets) if secrets else None,
        timeout_ms=settings.effective_timeout(magic.timeout, tenant),
        limiter=(
            FifoLimiter(magic.concurrent, settings.max_queue, script)
            if magic.concurrent is not None else None
        ),
        log_level=magic.log_level,
        log_request_body=magic.log_request_body,
        enabled=magic.enabled,
    )
