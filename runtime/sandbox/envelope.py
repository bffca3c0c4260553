"""The envelope codec: what crosses into the guest and what comes back, as ABI.md lays it out.

One place builds a request's first envelope, reads a finished response and a log line back,
and turns what stopped a crossing (a trap, the epoch, memory) into the script's error, for the
driver and for the fast serverless path alike (``Sandbox._answer_inline``).
"""

from __future__ import annotations

from typing import Any

import orjson

from runtime.sandbox import _capi
from runtime.sandbox.errors import ScriptError, ScriptMemoryError, ScriptTimeout
from runtime.sandbox.types import Invocation, LogRecord, Result

FIRST_RID = 1
"""The rid of a fresh instance's first request."""


def first_envelope(
    rid: int, inv: Invocation, timeout_ms: int | None, slice_ms: float | None,
    load: tuple[bytes, dict[str, str]] | None, path: str, memory_limit: int,
) -> tuple[bytes, bytes, float | None, float | None]:
    """A request's first crossing (``Driver.begin``): (header, blob, the crossing's budget, and
    ``slice_ms`` if the slice is what bounds it, else None)."""
    budget: float | None = timeout_ms or None
    if slice_ms is not None and (budget is None or slice_ms < budget):
        budget = slice_ms
    else:
        slice_ms = None
    header: dict[str, Any] = {"budget_ms": budget_ms(budget)}
    blob = inv.body
    if load is not None:
        code, env = load
        header["load"] = {"filename": path, **env_entry(env), "mem_limit": memory_limit, "code": len(code)}
        blob = code + blob
    header["batch"] = [request_item(rid, inv)]
    return orjson.dumps(header), blob, budget, slice_ms


def answered(out: dict[str, Any], blob: bytes, rid: int) -> Result | None:
    """Request ``rid``'s result, if its crossing did nothing but answer it (as most do); work it
    left (``more``) goes with its instance."""
    done = out.get("done")
    if done is None or len(out) != 1 + ("more" in out) or len(done) != 1 or done[0][0] != rid:
        return None
    return result_of(done[0], blob)


def result_of(done: list[Any], blob: bytes) -> Result:
    """A finished response as the guest reports it ([rid, status, headers, off, len])."""
    _, status, headers, off, length = done
    return Result(status, header_pairs(headers), blob[off : off + length])


def ops_of(out: dict[str, Any], blob: bytes) -> list[dict[str, Any]]:
    """The operations a crossing listed, each arg an op names in ``bytes`` replaced by the
    slice of ``blob`` it refers to (``{"off", "len"}``, ABI.md)."""
    ops = list(out.get("ops", ()))
    for op in ops:
        names = op.get("bytes")
        args = op.get("args")
        if names and isinstance(args, dict):
            for name in names:
                ref = args.get(name)
                if isinstance(ref, dict):
                    off, length = int(ref.get("off", 0)), int(ref.get("len", 0))
                    args[name] = blob[off : off + length] if 0 <= off and 0 <= length else b""
    return ops


def budget_ms(budget: float | None) -> float | None:
    """A budget for the guest: whole milliseconds as an integer, which it parses fastest."""
    return int(budget) if budget is not None and budget == int(budget) else budget


def env_entry(env: dict[str, str]) -> dict[str, dict[str, str]]:
    """The load header's ``env`` entry: left out when empty, the usual case (ABI.md)."""
    return {"env": env} if env else {}


def log_record(log: dict[str, Any]) -> LogRecord:
    """A log line as the guest reports it, as the host keeps it."""
    return LogRecord(log.get("level", "log"), log.get("msg", ""))


def header_pairs(headers: list[list[str]]) -> list[tuple[str, str]]:
    """Response headers as the guest reports them (JSON pairs) as the host keeps them."""
    return [(k, v) for k, v in headers]


def request_item(rid: int, inv: Invocation) -> list[Any]:
    """A request as the guest takes it (ABI.md): positional, so parsing it makes no keys."""
    return [rid, inv.method, inv.url, inv.path, inv.headers, inv.query, inv.params, inv.ip,
            len(inv.body), inv.trigger]


def stopped(exc: BaseException, limit_ms: int | None, path: str) -> ScriptError:
    """The script's error for what stopped its instance mid-crossing (``exc``): past its memory,
    its time (``limit_ms``, the limit of the request that was running), its stack, or a trap."""
    if isinstance(exc, MemoryError):
        return ScriptMemoryError(str(exc), name="MemoryError", path=path)
    assert isinstance(exc, _capi.GuestTrap)
    if exc.interrupted:
        return ScriptTimeout.after(limit_ms, path)
    message = str(exc)
    if "call stack exhausted" in message or "stack overflow" in message:
        return ScriptError("Maximum call stack size exceeded", name="RangeError", path=path)
    return ScriptError(f"the sandbox stopped the script: {message}", name="Trap", path=path)
