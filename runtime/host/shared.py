"""``shared``: each tenant's JSON state, in the host, read and written with plain property access.

Scripts keep the synchronous object they always had (``shared.hits = (shared.hits ?? 0) + 1``,
nested objects, ``delete``, ``in``, ``Object.keys``); ``guest/prelude/host/shared.js`` makes it
a Proxy whose accesses are *bound calls* here (``runtime.host``): the host knows which tenant's
instance is calling, so a script can reach its own tenant's state and no other, in every
instance and mode. The state itself is ``runtime.state.SharedState``: in memory in each process
(every tenant that used it since the process started, each within its cap), written behind to
SQLite in the data folder; its docstring gives the semantics of concurrent writes.

A host call costs microseconds, more than most reads and writes should, so each instance's
first call hands the host its *area* (``guest/shim/natives.c`` ``shared_area``) and a ``Link``
keeps it in step: before every crossing the link stamps the tenant's state generation and the
room left under its cap there, and the guest keeps what it read while the generation stays
the same; a top-level write is logged there, and the link applies the log when the crossing
ends (a failed one too) or before any call the instance makes, so a write reaches other
scripts once its writer waits or answers. The guest's own writes keep its cache: applying them
moves its ``valid`` cell on, unless someone else wrote meanwhile. When any change drops that
cache, the reads that follow ask the host again; what ``get`` answered is kept per tenant
(``runtime.sandbox.instance.Answers``) and given again natively, without entering Python,
until a change reaches the key's slot (``store._changed``: every writer, in this process or
another, bumps it).

Granted to every script of a tenant, for that tenant's state only: it is what ``shared`` has
always been, and nothing outside the tenant is reached. Per tenant: a cap on its size in bytes.

A call's answer must fit the guest's buffer (``CALL_OUT_BYTES``): an object is never sent whole
(the guest reads it key by key), but one string or array larger than that cannot be read back,
so writing one is refused.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from pydantic import Field
from pydantic_settings import BaseSettings

from runtime.host import HOST_OUT_BYTES, Caller, HostError, Unit, running
from runtime.state import SharedState, StateError, open_state
from runtime.state.store import MISSING, TenantState, sync_all

if TYPE_CHECKING:
    from runtime.compiler.magic import MagicComments
    from runtime.config import Settings
    from runtime.sandbox.instance import Answers, GuestInstance

log = logging.getLogger("wexec.shared")

CALL_OUT_BYTES = HOST_OUT_BYTES - 32
"""What one value's answer may hold: a call's answer, less the room ``take`` needs for a
version."""

OBJECT = b"o"
"""``get``'s answer for an object: the guest reads it through a Proxy of its own, by key."""

LOG_AT, LOG_CAP = 32, 32 * 1024
"""The guest's area (natives.c ``shared_area``): f64 cells ``gen`` (0), ``room`` (8) and
``valid`` (16), the log's u32 length (24), then the log, ``SHARED_LOG_CAP`` bytes."""


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


class Link:
    """One instance's area, kept in step with its tenant's state (see the module's doc); the
    instance's ``CrossingHook``."""

    __slots__ = ("_cap", "_cells", "_crossing", "_length", "_log", "_state", "_store", "_tenant",
                 "answers")

    def __init__(self, memory: memoryview, at: int, grant: Grant, caller: Caller) -> None:
        if not 0 < at <= len(memory) - LOG_AT - LOG_CAP:
            raise SharedError("the shared state area lies outside the guest's memory")
        tenant = caller.tenant
        # typed views of the area: an item of one costs less than a struct's unpack_from
        self._cells = memory[at : at + 24].cast("d")
        self._length = memory[at + 24 : at + 28].cast("I")
        self._log = memory[at + LOG_AT : at + LOG_AT + LOG_CAP]
        self._cap, self._tenant = grant.cap, tenant
        self._crossing = caller.crossing
        self._store = grant.state
        self._state: TenantState = self._store.tenant(tenant)
        self.answers: Answers | None = None
        """The tenant's answers, once the instance is given them (``get`` keeps them)."""
        self.changed()

    def before(self) -> None:
        """Stamp the state's generation and the room its cap leaves."""
        state, cells = self._state, self._cells
        cells[0] = state.gen
        cells[1] = self._cap - state.bytes

    def after(self) -> None:
        """The crossing ended: apply its log, unless it may still be run again (the sandbox
        calls this once it knows it will not be; a rerun drops the instance and its log)."""
        if self._crossing.rerunnable:
            return
        try:
            self.drain()
        except Exception:  # a crossing's end must not fail for its log
            log.exception("applying %s's logged shared state writes failed", self._tenant)

    def drain(self) -> None:
        """Apply the writes logged since the last drain, and stamp the state as it is now."""
        n = self._length[0]
        if not n:
            return
        self._crossing.commit()
        self._length[0] = 0
        before, after = self._store.write_keys(self._tenant, _logged(self._log[:n].tobytes()))
        state, cells = self._state, self._cells
        cells[0] = state.gen
        cells[1] = self._cap - state.bytes
        if cells[2] == before:  # the guest's cache had it all
            cells[2] = after

    def changed(self) -> None:
        """A call changed the state, and the guest drops its cache on return: stamp the state
        as it is now, and the (empty) cache as holding it."""
        state, cells = self._state, self._cells
        cells[0] = cells[2] = state.gen
        cells[1] = self._cap - state.bytes


def _logged(log: bytes) -> dict[str, tuple[bytes, Any] | None]:
    """The writes of a guest's log (natives.c ``w_shared_put``: ``path\\tJSON\\n``, no JSON for
    a delete), the last of each key: its (JSON, value), or None to delete it. A record the
    prelude never writes (only a script writing over its own memory could) is skipped."""
    if log.find(b"\n") == len(log) - 1:  # one record: the common request, kept short
        records = [log[:-1]]
    else:
        records = log.split(b"\n")
        records.pop()  # after the last newline: nothing
        if len(records) > 1:  # the last of each path, latest first
            records = list({path: r for r in records for path in (r.partition(b"\t")[0],)}.values())
    writes: dict[str, tuple[bytes, Any] | None] = {}
    for record in records:
        path, _, raw = record.partition(b"\t")
        try:  # orjson reads a one-key path faster than bytes methods can check it
            keys = orjson.loads(path)
            if type(keys) is list and len(keys) == 1 and type(keys[0]) is str:
                writes[keys[0]] = (raw, orjson.loads(raw)) if raw else None
        except orjson.JSONDecodeError:  # not UTF-8, not JSON
            continue
    return writes


def _link(area: bytes, caller: Caller) -> Link | None:
    """The calling instance's link, made on its first call (``area``: its address), with
    what it logged applied; None for a call from outside any instance."""
    instance = running.instance
    if instance is None:
        return None
    link = instance.hook
    if isinstance(link, Link):
        link.drain()
        return link
    if not area or instance.memory_view is None:
        return None
    try:
        at = int(area)
    except ValueError:
        raise SharedError("a shared state call starts with its area's address") from None
    link = Link(instance.memory_view, at, caller.grants["shared"], caller)
    instance.hook = link
    answers = _answers(link._state, instance)
    if answers is not None and instance.answer_from(answers, at):
        link.answers = answers
    return link


_answers_lock = threading.Lock()


def _answers(state: TenantState, instance: GuestInstance) -> Answers | None:
    """The tenant's answers, made on its first instance's first call (None: no memory)."""
    from runtime.sandbox.instance import Answers  # here: the sandbox imports this unit

    with _answers_lock:  # one table per tenant, or a writer would bump another's counters
        if state.answers is None:
            try:
                state.answers = Answers(instance.engine.native)
            except MemoryError:
                return None
            state.versions = state.answers.versions
        answers: Answers = state.answers
        return answers


def _request(data: bytes, caller: Caller) -> tuple[list[str], bytes, Link | None]:
    """A call's input: the area's address (the instance's first call) or nothing, then the
    path as a JSON array of keys, then the rest, each after a newline; and the caller's link,
    its log applied first so that the call sees those writes."""
    area, _, data = data.partition(b"\n")
    link = _link(area, caller)
    head, _, rest = data.partition(b"\n")
    path = orjson.loads(head)
    if type(path) is not list:
        raise SharedError("a shared state path is a list of string keys")
    for key in path:
        if type(key) is not str:
            raise SharedError("a shared state path is a list of string keys")
    return path, rest, link


def _shown(path: list[str]) -> str:
    return ".".join(["shared", *path])


def get(data: bytes, caller: Caller) -> bytes:
    """``shared.get path`` → nothing (missing), ``o`` (an object), or the value's JSON. The
    answer is kept for the next same call of any instance of the tenant (``Answers``, which
    ``instance.c`` gives while the key is unchanged), once the instance has been linked."""
    path, _, link = _request(data, caller)
    answers = link.answers if link is not None and path else None
    if answers is not None:  # read before the value: a change in between makes it stale
        versions = answers.versions
        slot = hash(path[0]) & (len(versions) - 1)
        version = versions[slot]
    value = caller.grants["shared"].state.get(caller.tenant, path)
    if value is MISSING:
        raw = b""
    elif isinstance(value, dict):
        raw = OBJECT
    else:
        raw = orjson.dumps(value)
        if len(raw) > CALL_OUT_BYTES:
            raise SharedError(f"{_shown(path)} is {len(raw)} bytes of JSON, more than one read "
                              f"carries ({CALL_OUT_BYTES}); keep it in several keys")
    if answers is not None:  # as the next calls will ask: without the area's address
        answers.put(data[data.index(b"\n"):], raw, slot, version)
    return raw


def set_(data: bytes, caller: Caller) -> bytes:
    """``shared.set path\\nJSON``."""
    caller.crossing.commit()
    path, raw, link = _request(data, caller)
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
    _changed(link)
    return b""


def _changed(link: Link | None) -> None:
    if link is not None:
        link.changed()


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
    caller.crossing.commit()
    path, _, link = _request(data, caller)
    if not path:
        raise SharedError("shared itself cannot be deleted; delete its keys")
    had = caller.grants["shared"].state.delete(caller.tenant, path)
    _changed(link)
    return b"1" if had else b"0"


def has(data: bytes, caller: Caller) -> bytes:
    path, _, _ = _request(data, caller)
    return b"0" if caller.grants["shared"].state.get(caller.tenant, path) is MISSING else b"1"


def keys(data: bytes, caller: Caller) -> bytes:
    path, _, _ = _request(data, caller)
    raw = orjson.dumps(caller.grants["shared"].state.keys(caller.tenant, path))
    if len(raw) > CALL_OUT_BYTES:
        raise SharedError(f"{_shown(path)} has too many keys to list in one answer "
                          f"({len(raw)} bytes); keep fewer keys in one object")
    return raw


def take(data: bytes, caller: Caller) -> bytes:
    """``shared.take [key]`` → ``version\\nJSON`` (JSON empty: missing), for ``update``."""
    path, _, link = _request(data, caller)
    key = _one_key(path)
    version, raw = caller.grants["shared"].state.take(caller.tenant, key)
    _changed(link)
    if raw is not None and len(raw) > CALL_OUT_BYTES:
        raise SharedError(f"{_shown(path)} is too large to update in one step ({len(raw)} bytes)")
    return b"%d\n%s" % (version, raw or b"")


def swap(data: bytes, caller: Caller) -> bytes:
    """``shared.swap [key]\\nversion\\nJSON`` (JSON empty: delete) → ``1`` written, ``0`` not:
    the key changed since its ``take``."""
    caller.crossing.commit()
    path, rest, link = _request(data, caller)
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
    _changed(link)
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
