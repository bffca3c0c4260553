"""``isolate.eval(code, bindings, options)``: code run as a script of its own, in a fresh store.

The code (JS or TS, shaped like any script: top-level ``return``, ``module.exports``, ``export
default``) is compiled by the sandbox's compiler and run once as a serverless request of the
caller's tenant, in a new instance from the snapshot, with limits no wider than the caller's:
the same memory cap, the caller's grants (its magic comments cannot widen them), and a time
limit that ends before the caller's, by 10 % of what it has left and at least 50 ms, so a
nested run that hits its limit rejects in a caller that still has time to answer. Nesting is
bounded in depth, evaluations per request and nested runs in flight per tenant.

Bindings in object form become the code's variables: their JSON travels in the nested
instance's ``process.env`` under one reserved name, read and removed by one line put above the
code, so the compile depends on the names only and the compile cache is not filled by values.
A request (the array form's ``req``) becomes the nested run's own ``req``; what the nested run
answers comes back as its status, headers and body, with what it logged.

Code evaluated again (the same source, lately) starts from a serverless image of its top level,
as a script's later requests do; code seen once, or with bindings (their values are in its
memory once loaded), never makes one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pydantic import Field
from pydantic_settings import BaseSettings

from runtime.host import HostError, OpContext, Refused, Unit

if TYPE_CHECKING:
    from runtime.compiler import Artefact, Compiler
    from runtime.compiler.magic import MagicComments
    from runtime.config import Settings
    from runtime.sandbox.types import Invocation, Result

MARGIN_SHARE, MARGIN_MIN_S = 0.10, 0.050
"""What a nested run leaves its caller: this share of the caller's remaining time, at least this."""

BINDINGS_ENV = "__WEXEC_ISOLATE_BINDINGS"
"""The ``process.env`` entry that carries object-form bindings into the nested instance."""

EVAL_PATH = "isolate.eval.ts"
"""The nested script's name in its errors and stack traces (``.ts``: TypeScript is accepted)."""

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_RESERVED = frozenset({
    "break", "case", "catch", "class", "const", "continue", "debugger", "default", "delete", "do",
    "else", "enum", "export", "extends", "false", "finally", "for", "function", "if", "import",
    "in", "instanceof", "new", "null", "return", "super", "switch", "this", "throw", "true",
    "try", "typeof", "var", "void", "while", "with", "yield", "let", "static", "implements",
    "interface", "package", "private", "protected", "public", "await", "arguments", "eval", "req",
    "res", "metadata", "shared",
})
"""Names a binding may not take: JS keywords, and the handler's own parameters (bind ``req``
and ``res`` through the request, as the array form does)."""


class IsolateSettings(BaseSettings):
    """How far nested runs may go (``runtime.config.Settings`` inherits this section)."""

    isolate_max_depth: int = Field(
        3, ge=1, description="How deep isolate.eval may nest (code evaluated by evaluated code).",
    )
    isolate_max_evals: int = Field(
        100, ge=1, description="isolate.eval calls one request may make.",
    )
    tenant_isolates: int = Field(
        8, ge=1, description="Nested runs one tenant may have in flight at once, per server "
        "process (each holds an instance and its memory).",
    )
    isolate_max_result_bytes: int = Field(
        16 * 1024 * 1024, ge=1, description="Largest answer an isolate.eval returns to its "
        "caller (a streamed one is read up to this).",
    )


@dataclass(frozen=True, slots=True)
class Grant:
    depth_left: int
    max_evals: int
    tenant_runs: int
    max_result_bytes: int


@dataclass(slots=True)
class Spent:
    evals: int = 0


class IsolateError(HostError):
    """An evaluation refused before it ran (a cap, no time left, a bad binding name)."""

    js_name = "IsolateError"


def configure(settings: Settings, tenant: str) -> Grant:
    assert isinstance(settings, IsolateSettings)
    return Grant(settings.isolate_max_depth, settings.isolate_max_evals, settings.tenant_isolates,
                 settings.isolate_max_result_bytes)


def grant(configured: Grant, magic: MagicComments) -> Grant:
    """Every script may evaluate code: it runs sandboxed, with no more than the caller holds."""
    return configured


_in_flight: dict[str, int] = {}  # tenant -> its nested runs in flight (this process)


def time_limit_ms(requested: float | None, deadline: float | None, now: float) -> int | None:
    """The nested run's limit: ``requested`` (``options.timeout``), never past the caller's
    ``deadline`` less the margin; None when neither bounds it."""
    if deadline is None:
        return int(requested) if requested else None
    left = deadline - now
    cap_ms = int((left - max(MARGIN_SHARE * left, MARGIN_MIN_S)) * 1000)
    if cap_ms < 1:
        raise IsolateError(
            f"isolate.eval refused: the calling script has {max(0, int(left * 1000))} ms left, "
            f"not enough to run code and still answer (a nested run leaves its caller 10 % of "
            f"its time, at least {int(MARGIN_MIN_S * 1000)} ms)"
        )
    return min(int(requested), cap_ms) if requested else cap_ms


def with_bindings(code: str, names: list[str]) -> str:
    """``code`` under one line that declares ``names`` from the nested ``process.env``."""
    for name in names:
        if not _IDENTIFIER.fullmatch(name) or name in _RESERVED:
            raise IsolateError(
                f"isolate.eval refused: binding {name!r} cannot be a variable name (bind req and "
                "res as [req, res] or as { req, res }, other names must be JS identifiers)"
            )
    if not names:
        return code
    env = f"process.env.{BINDINGS_ENV}"
    declared = ", ".join(f"{n} = __wexec_b[{json.dumps(n)}]" for n in names)
    return f"var __wexec_b = JSON.parse({env}), {declared}; delete {env};\n{code}"


def invocation(request: dict[str, Any] | None) -> Invocation:
    """The nested run's request: the caller's ``req`` as the guest sent it, or a bare GET."""
    from runtime.sandbox.types import Invocation

    if not request:
        return Invocation("GET", "/", "http://localhost/")
    body = request.get("body")
    return Invocation(
        str(request.get("method") or "GET"), str(request.get("path") or "/"),
        str(request.get("url") or ""), dict(request.get("headers") or {}),
        dict(request.get("query") or {}), dict(request.get("params") or {}),
        base64.b64decode(body) if body else b"", str(request.get("ip") or ""),
    )


async def evaluate(args: dict[str, Any], ctx: OpContext) -> dict[str, Any]:
    """``isolate.eval {code, bindings?, request?, timeout?}`` → the nested run's answer
    ``{status, headers, body | base64, logs}``, or ``{error: {name, message, line, column}}``
    when the code failed, so the guest can throw an error of the code's own."""
    from runtime.compiler import CompileError
    from runtime.sandbox.errors import ScriptError, ScriptTimeout

    sandbox = ctx.services.sandbox
    if sandbox is None:
        raise Refused("isolate.eval refused: this host runs no sandbox for nested code")
    g: Grant = ctx.grants["isolate"]
    spent: Spent = ctx.state["isolate"]
    code = args.get("code")
    if not isinstance(code, str):
        raise TypeError("isolate.eval needs code: a string of JS or TS")
    bindings = args.get("bindings") or {}
    if not isinstance(bindings, dict):
        raise TypeError("isolate.eval bindings must be an object")
    if g.depth_left <= 0:
        raise IsolateError("isolate.eval refused: evaluated code is already nested as deep as "
                           "allowed (WEXEC_ISOLATE_MAX_DEPTH)")
    if spent.evals >= g.max_evals:
        raise IsolateError(f"isolate.eval refused: this request already made {spent.evals} "
                           f"evaluations, the cap (WEXEC_ISOLATE_MAX_EVALS)")
    if _in_flight.get(ctx.tenant, 0) >= g.tenant_runs:
        raise IsolateError(f"isolate.eval refused: this tenant already has {g.tenant_runs} "
                           "nested runs in flight, the cap (WEXEC_TENANT_ISOLATES)")
    timeout = args.get("timeout")
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
        raise TypeError("isolate.eval options.timeout must be a positive number of milliseconds")
    names = list(bindings)
    source = with_bindings(code, names)
    offset = 1 if names else 0
    spent.evals += 1
    _in_flight[ctx.tenant] = _in_flight.get(ctx.tenant, 0) + 1
    try:
        try:
            artefact, again = await compiled(sandbox.compiler, source)
        except CompileError as exc:
            return failure(*_named(exc.message), exc.line, exc.col, offset)
        if names:
            artefact = replace(artefact, env={**artefact.env, BINDINGS_ENV: json.dumps(bindings)})
        limit = time_limit_ms(timeout, ctx.deadline, time.monotonic())
        if limit is None:
            limit = sandbox.timeout_for(artefact, ctx.tenant)
        nested = {**ctx.grants, "isolate": replace(g, depth_left=g.depth_left - 1)}
        try:
            result = await sandbox.invoke_once(
                artefact, invocation(args.get("request")), timeout_ms=limit, tenant=ctx.tenant,
                grants=nested, keep_image=again and not names,
            )
        except ScriptTimeout:
            return failure("TimeoutError", f"isolate.eval: the code ran past its time limit of "
                           f"{limit} ms (options.timeout, never more than the caller has left "
                           "less a margin)", None, None, offset)
        except ScriptError as exc:
            out = failure(exc.name, exc.message, exc.line, exc.col, offset)
            out["logs"] = [[r.level, r.message] for r in exc.logs]
            return out
        return await answer(result, g.max_result_bytes)
    finally:
        _in_flight[ctx.tenant] -= 1


_artefacts: OrderedDict[str, Artefact] = OrderedDict()  # source -> artefact, most recent last
ARTEFACTS_KEPT = 256


async def compiled(compiler: Compiler, source: str) -> tuple[Artefact, bool]:
    """``source`` compiled, and whether it was evaluated lately: such code (a template, a rule)
    comes from memory, with no trip to a thread; new code compiles on one, off the event loop
    (esbuild may take milliseconds)."""
    artefact = _artefacts.get(source)
    if artefact is not None:
        _artefacts.move_to_end(source)
        return artefact, True
    artefact = await asyncio.to_thread(compiler.compile_source, source, EVAL_PATH)
    _artefacts[source] = artefact
    if len(_artefacts) > ARTEFACTS_KEPT:
        _artefacts.popitem(last=False)
    return artefact, False


def _named(message: str) -> tuple[str, str]:
    """A compile error's name and message (``"SyntaxError: x"`` → both; esbuild's: a SyntaxError)."""
    name, sep, rest = message.partition(": ")
    if sep and _IDENTIFIER.fullmatch(name) and name.endswith("Error"):
        return name, rest
    return "SyntaxError", message


def failure(name: str, message: str, line: int | None, col: int | None, offset: int) -> dict[str, Any]:
    """The code's error as the guest rethrows it, its line counted in the caller's ``code``."""
    if line is not None:
        line -= offset
        if line < 1:
            line = col = None
    return {"error": {"name": name, "message": message, "line": line, "column": col}}


async def answer(result: Result, cap: int) -> dict[str, Any]:
    """The nested run's response for the guest: its body as text if it is UTF-8, else base64."""
    body = result.body
    if result.stream is not None:
        parts: list[bytes] = []
        size = 0
        async for chunk in result.stream:
            size += len(chunk)
            if size > cap:
                await result.stream.aclose()
                raise IsolateError(f"isolate.eval: the code's streamed answer passed {cap} bytes "
                                   "(WEXEC_ISOLATE_MAX_RESULT_BYTES)")
            parts.append(chunk)
        body = b"".join(parts)
    elif len(body) > cap:
        raise IsolateError(f"isolate.eval: the code's answer is {len(body)} bytes, over {cap} "
                           "(WEXEC_ISOLATE_MAX_RESULT_BYTES)")
    out: dict[str, Any] = {
        "status": result.status, "headers": result.headers,
        "logs": [[r.level, r.message] for r in result.logs],
    }
    try:
        out["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        out["base64"] = base64.b64encode(body).decode("ascii")
    return out


UNIT = Unit(
    name="isolate",
    granted_by="every script may evaluate code where the isolate unit is held",
    ops={"eval": evaluate},
    settings=IsolateSettings,
    configure=configure,
    grant=grant,
    request_state=Spent,
)
