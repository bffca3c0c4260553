"""A script's magic comments turned, once per compiled version, into what each request enforces.

A script that does not compile has no policy, but its `@token` still guards it: its compile and
magic-comment errors are answered in full only to a caller who presents the token, and never
quote a secret (`compile_failed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from runtime.compiler import CompileError
from runtime.compiler.magic import MagicCommentError
from runtime.config import Settings
from runtime.host import Grants
from runtime.host.registry import UNITS, grants_for
from runtime.http import auth
from runtime.http.auth import digest
from runtime.http.errors import HTTPError, script_failed, unauthorized
from runtime.http.limits import FifoLimiter
from runtime.observe.redact import Redactor
from runtime.types import Query

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
    grants: Grants  # the host units the version may use and how far (host.registry.grants_for)


def policy_for(tenant: str, script: str, artefact: Artefact, settings: Settings) -> Policy:
    """`script` is the path relative to the root of `tenant`, as errors and logs name it."""
    magic = artefact.magic
    secrets = magic.secrets
    return Policy(
        script=script,
        cors=magic.cors,
        token_digest=digest(secrets.token) if secrets.token is not None else None,
        secrets=secrets.values,
        redactor=Redactor(list(secrets.values)) if secrets.values else None,
        timeout_ms=settings.effective_timeout(magic.timeout, tenant),
        limiter=(
            FifoLimiter(magic.concurrent, settings.max_queue, script)
            if magic.concurrent is not None else None
        ),
        log_level=magic.log_level,
        log_request_body=magic.log_request_body,
        enabled=magic.enabled,
        grants=grants_for(UNITS, settings, tenant, magic),
    )


def compile_failed(
    script: str, error: Exception | None, headers: dict[str, str],
    query: Query,
) -> HTTPError:
    """The answer for a script that does not compile, as much of it as this caller may see.

    A script with a `@token` shows its errors only to a caller presenting that token (anyone
    else gets the 401 any request would); one whose `@token` line cannot be read shows nobody
    more than that it is broken. Whatever is shown has the script's secrets taken out: an
    esbuild message quotes the source next to the error, and that may be the token.
    """
    secrets = error.secrets if isinstance(error, CompileError) else None
    if secrets is not None and secrets.unreadable_token:
        return HTTPError(
            500, "invalid_magic_comments",
            f"{script} cannot be served: its @token line cannot be read, so its errors are shown "
            "to nobody; write it as // @token <one word>",
            script=script,
        )
    if secrets is not None and secrets.token is not None:
        found = auth.credentials(headers, query, "")
        if not auth.accepts(digest(secrets.token), found.presented):
            return unauthorized(script)
    redact = Redactor(list(secrets.values)).quoting_source if secrets is not None else str
    magic = error.__cause__ if error is not None else None
    if isinstance(magic, MagicCommentError):
        problems = [{"line": line, "message": redact(message)} for line, message in magic.problems]
        return HTTPError(
            500, "invalid_magic_comments", redact(f"{script}: {magic}"), script=script,
            line=problems[0]["line"] if problems else None, problems=problems,
        )
    if isinstance(error, CompileError):
        return script_failed("compile_error", "CompileError", redact(error.message), script,
                             error.line, error.col)
    return script_failed(
        "compile_error", "InternalError",
        "wexec could not compile this script for a reason of its own; see the server log",
        script, None, None,
    )
