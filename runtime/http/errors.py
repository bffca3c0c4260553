"""Every error the server answers, as JSON a person can act on: what failed, where, what to do.

Shape: `{"error": code, "message": text, ...details}`. Script failures carry the script path
and the line and column in the original source.
"""

from __future__ import annotations

import json
from typing import Any

from runtime.sandbox.types import LogRecord


class HTTPError(Exception):
    """An answer that stops the request path early; raised anywhere on it, sent by the gateway."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: list[tuple[str, str]] | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.logs: list[LogRecord] = []  # what a failed script logged, for the request log
        self.headers = [("content-type", "application/json"), *(headers or [])]
        self.details = details

    def body(self) -> bytes:
        payload = {"error": self.code, "message": self.message, **self.details}
        return json.dumps(payload, separators=(",", ":")).encode()


def not_found(tenant: str, path: str) -> HTTPError:
    return HTTPError(
        404, "not_found",
        f"no script serves {path} in tenant {tenant}; add a .ts or .js file at the matching "
        "path (e.g. /a/b → a/b.ts or a/b/index.ts)",
        path=path,
    )


def unauthorized(script: str) -> HTTPError:
    return HTTPError(
        401, "unauthorized",
        f"{script} requires its @token: send it as 'Authorization: Bearer <token>', as the "
        "Basic password, in an X-Token header or as ?token=",
        [("www-authenticate", 'Bearer realm="wexec"')],
        script=script,
    )


def body_too_large(limit: int) -> HTTPError:
    return HTTPError(
        413, "body_too_large",
        f"request body is larger than {limit} bytes; send less, or raise WEXEC_MAX_BODY_BYTES",
        limit=limit,
    )


def timed_out(script: str, limit_ms: int | None) -> HTTPError:
    return HTTPError(
        504, "timeout",
        f"{script} ran past its time limit of {limit_ms} ms; raise it with // @timeout <ms>, "
        "or make the script faster",
        script=script, limit_ms=limit_ms,
    )


def overloaded(reason: str) -> HTTPError:
    return HTTPError(
        503, "overloaded", f"{reason}; retry shortly", [("retry-after", "1")],
    )


def script_failed(
    kind: str, name: str, message: str, script: str, line: int | None, col: int | None,
    stack: str = "",
) -> HTTPError:
    where = f"{script}:{line}:{col}" if line is not None else script
    details: dict[str, Any] = {"script": script, "line": line, "col": col}
    if stack:
        details["stack"] = stack
    return HTTPError(500, kind, f"{name}: {message} ({where})", **details)


def invalid_response(script: str, problem: str, logs: list[LogRecord]) -> HTTPError:
    err = HTTPError(
        500, "invalid_response",
        f"{script} returned a response that cannot be sent: {problem}", script=script,
    )
    err.logs = logs
    return err
