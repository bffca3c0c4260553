"""``shared``: each tenant's JSON state, in the host, read and written with plain property access.

Scripts keep the synchronous object they always had (``shared.hits = (shared.hits ?? 0) + 1``,
nested objects, ``delete``, ``in``, ``Object.keys``); ``guest/prelude/host/shared.js`` makes it
a Proxy whose accesses are *bound calls* here (``runtime.host``; a key read again in the same
crossing is answered in the guest): the host knows which tenant's instance is calling, so a
script can reach its own tenant's state and no other, in every instance and mode. The state
itself is ``runtime.state.SharedState``: in memory in each process (every tenant that used it
since the process started, each within its cap), written behind to SQLite in the data folder;
its docstring gives the semantics of concurrent writes.

Granted to every script of a tenant, for that tenant's state only: it is what ``shared`` has
always been, and nothing outside the tenant is reached. Per tenant: a cap on its size in bytes.

A call's answer must fit the guest's buffer (``CALL_OUT_BYTES``): an object is never sent whole
(the guest reads it key by key), but one string or array larger than that cannot be read back,
so writing one is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import Field
from pydantic_settings import BaseSettings

from runtime.host import Caller, HostError, Unit
from runtime.state import SharedState, StateError, open_state
from runtime.state.store import MISSING, sync_all

if TYPE_CHECKING:
    from runtime.compiler.magic import MagicComments
    from runtime.config import Settings

CALL_OUT_BYTES = 64 * 1024 - 32
"""What one answer may hold: the guest's buffer (``HOST_OUT_CAP``, guest/shim/hot.c) less the
room ``take`` needs for a version."""

OBJECT = b"o"
"""``get``'s answer for an object: the guest reads it through a Proxy of its own, by key."""


class SharedSettings(BaseSettings):
    shared_tenant_bytes: int = Field(
        16 * 1024 * 1024, ge=0, description="Bytes of JSON one tenant's shared state may hold "
        "(keys and values); a write past it fails with an error naming the cap.",
    )
    shared_sync_ms: int = Field(
        50, ge=1, description="How often each process writes shared state to its SQLite file "
        "and reads what other processes (--workers N) wrote.",
    )


class Grant:
    """What a script of one tenant may use: the process's state (opened on first use, so that
    computing grants touches no file) and the tenant's cap."""

    __slots__ = ("_state", "cap", "path", "sync_ms")

    def __init__(self, path: Path, sync_ms: int, cap: int) -> None:
        self.path, self.sync_ms, self.cap = path, sync_ms, cap
        self._state: SharedState | None = None

    @property
    def state(self) -> SharedState:
        if self._state is None:
            self._state = open_state(self.path, self.sync_ms)
        return self._state


class SharedError(HostError):
    js_name = "Error"


def state_of(settings: Settings) -> SharedState:
    """This process's shared state for ``settings``' data folder (one per file)."""
    return configure(settings, "").state


def configure(settings: Settings, tenant: str) -> Grant:
    assert isinstance(settings, SharedSettings)
    return Grant(
        settings.data_dir / "state" / "shared.sqlite3", settings.shared_sync_ms,
        settings.shared_tenant_bytes,
    )


def grant(configured: Grant, magic: MagicComments) -> Grant:
    return configured


def _request(data: bytes) -> tuple[list[str], bytes]:
    """A call's input: the path as a JSON array of keys, a newline, then the rest."""
    head, _, rest = data.partition(b"\n")
    path = orjson.loads(head)
    if type(path) is not list:
        raise SharedError("a shared state path is a list of string keys")
    for key in path:
        if type(key) is not str:
            raise SharedError("a shared state path is a list of string keys")
    return path, rest


def _shown(path: list[str]) -> str:
    return ".".join(["shared", *path])


def get(data: bytes, caller: Caller) -> bytes:
    """``shared.get path`` → nothing (missing), ``o`` (an object), or the value's JSON."""
    path, _ = _request(data)
    value = caller.grants["shared"].state.get(caller.tenant, path)
    if value is MISSING:
        return b""
    if isinstance(value, dict):
        return OBJECT
    raw = orjson.dumps(value)
    if len(raw) > CALL_OUT_BYTES:
        raise SharedError(f"{_shown(path)} is {len(raw)} bytes of JSON, more than one read "
                          f"carries ({CALL_OUT_BYTES}); keep it in several keys")
    return raw


def set_(data: bytes, caller: Caller) -> bytes:
    """``shared.set path\\nJSON``."""
    path, raw = _request(data)
    if not path:
        raise SharedError("shared itself cannot be replaced; set its keys")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise SharedError(f"{_shown(path)}: only JSON values can be kept in shared") from None
    if len(raw) > CALL_OUT_BYTES:
        _refuse_unreadable(path, value)
    grant: Grant = caller.grants["shared"]
    try:
        grant.state.set(caller.tenant, path, value, grant.cap, encoded=raw)
    except StateError as exc:
        raise SharedError(str(exc)) from None
    return b""


def _refuse_unreadable(path: list[str], value: Any) -> None:
    """Refuse a value holding a string or array too large to be read back in one answer."""
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_unreadable([*path, key], item)
        return
    size = len(orjson.dumps(value))
    if size > CALL_OUT_BYTES:
        raise SharedError(
            f"{_shown(path)} would be {size} bytes of JSON in one value, more than one read "
            f"carries ({CALL_OUT_BYTES}); keep it in several keys (objects may be larger)"
        )


def delete(data: bytes, caller: Caller) -> bytes:
    """``shared.delete path`` → ``1`` if it held something, else ``0``."""
    path, _ = _request(data)
    if not path:
        raise SharedError("shared itself cannot be deleted; delete its keys")
    return b"1" if caller.grants["shared"].state.delete(caller.tenant, path) else b"0"


def has(data: bytes, caller: Caller) -> bytes:
    path, _ = _request(data)
    return b"0" if caller.grants["shared"].state.get(caller.tenant, path) is MISSING else b"1"


def keys(data: bytes, caller: Caller) -> bytes:
    path, _ = _request(data)
    raw = orjson.dumps(caller.grants["shared"].state.keys(caller.tenant, path))
    if len(raw) > CALL_OUT_BYTES:
        raise SharedError(f"{_shown(path)} has too many keys to list in one answer "
                          f"({len(raw)} bytes); keep fewer keys in one object")
    return raw


def take(data: bytes, caller: Caller) -> bytes:
    """``shared.take [key]`` → ``version\\nJSON`` (JSON empty: missing), for ``update``."""
    path, _ = _request(data)
    key = _one_key(path)
    version, raw = caller.grants["shared"].state.take(caller.tenant, key)
    if raw is not None and len(raw) > CALL_OUT_BYTES:
        raise SharedError(f"{_shown(path)} is too large to update in one step ({len(raw)} bytes)")
    return b"%d\n%s" % (version, raw or b"")


def swap(data: bytes, caller: Caller) -> bytes:
    """``shared.swap [key]\\nversion\\nJSON`` (JSON empty: delete) → ``1`` written, ``0`` not:
    the key changed since its ``take``."""
    path, rest = _request(data)
    key = _one_key(path)
    version, _, raw = rest.partition(b"\n")
    if raw:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise SharedError(f"{_shown(path)}: only JSON values can be kept in shared") from None
        if len(raw) > CALL_OUT_BYTES:
            _refuse_unreadable(path, value)
    grant: Grant = caller.grants["shared"]
    try:
        done = grant.state.swap(caller.tenant, key, int(version), raw or None, grant.cap)
    except StateError as exc:
        raise SharedError(str(exc)) from None
    return b"1" if done else b"0"


def _one_key(path: list[str]) -> str:
    if len(path) != 1:
        raise SharedError("shared.update takes one top-level key")
    return path[0]


UNIT = Unit(
    name="shared",
    granted_by="every script may use its own tenant's shared state",
    bound_calls={"get": get, "set": set_, "delete": delete, "has": has, "keys": keys,
                 "take": take, "swap": swap},
    settings=SharedSettings,
    configure=configure,
    grant=grant,
    shutdown=sync_all,  # a sandbox closes: write everything out; the state stays open
)
