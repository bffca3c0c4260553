"""Every failure of the management API answered as the server's one JSON error shape.

`{"error": code, "message": text, ...details}` (`http.errors.HTTPError`), whether a handler
raised it, the router found no endpoint or method, the request did not fit its model, or the
handler crashed; FastAPI's own answers (`{"detail": …}`, plain text) never reach a client.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from runtime.http.errors import HTTPError


class ErrorBody(BaseModel):
    """Every failure's answer; details beside `error` and `message` depend on the failure."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(description="A code to branch on, e.g. forbidden, validation_failed.")
    message: str = Field(description="What failed and what to change, for a person.")


RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "The request cannot be done as asked (the message says why)."),
        (401, "No token, or not one this server knows."),
        (403, "The token does not grant this tenant, or the path leaves the tenant's folder."),
        (404, "No such file, tenant or endpoint."),
        (409, "Conflicts with what exists (a file in the way, a restart under way)."),
        (413, "The body or the content is too large."),
        (422, "The request does not fit the endpoint's parameters or body (`problems`)."),
    )
}
"""The error answers every guarded endpoint documents."""


async def _answer(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPError)
    return Response(exc.body(), exc.status, headers=dict(exc.headers))


async def _routing(request: Request, exc: Exception) -> Response:
    """No endpoint at the path (404), or not with this method (405)."""
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if exc.status_code == 404:
        health = f"{request.scope.get('root_path', '')}/health"
        err = HTTPError(404, "not_found", f"no management endpoint at {path}; see GET {health}",
                        list((exc.headers or {}).items()), path=path)
    else:
        code = {405: "method_not_allowed"}.get(exc.status_code, "http_error")
        err = HTTPError(exc.status_code, code, f"{request.method} {path}: {exc.detail}",
                        list((exc.headers or {}).items()), path=path)
    return await _answer(request, err)


async def _invalid(request: Request, exc: Exception) -> Response:
    """A request that does not fit its model: every problem, each with where it is."""
    assert isinstance(exc, RequestValidationError)
    problems = [{"where": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
                for error in exc.errors()]
    listed = "; ".join(f"{p['where']}: {p['message']}" for p in problems)
    return await _answer(request, HTTPError(
        422, "invalid_request", f"{request.method} {request.url.path}: {listed}",
        path=request.url.path, problems=problems,
    ))


async def _crash(request: Request, exc: Exception) -> Response:
    """A failure inside the management API (the server logs its traceback)."""
    return await _answer(request, HTTPError(
        500, "internal_error",
        f"wexec failed to serve {request.method} {request.url.path}: {exc}",
        path=request.url.path,
    ))


HANDLERS: dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]] = {
    HTTPError: _answer,
    HTTPException: _routing,
    RequestValidationError: _invalid,
    Exception: _crash,
}
