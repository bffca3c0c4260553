"""What a script may make the host hold: per request, and per tenant across its instances.

Every host operation a script starts (timers now; fetch, files, state and AI as they land),
every host stream it reads (``streams.py``) and every console line it writes pass the driver, which counts them against the caps here, so the
host's memory and disk never depend on what a script does. A request and its tenant each have a
cap on operations pending at once: past it the operation is refused, and the script's promise
rejects with an error naming the cap and its setting (a refused timer fails its request the same
way). Console output has a per-request cap and a per-tenant budget per minute: past either, lines
are dropped and counted in one record. A tenant's ``res.write`` streams together may hold a
bounded number of bytes their clients have not taken yet (a stream dropped stops counting).

One ``TenantQuota`` per tenant, shared by all the drivers of that tenant in one process
(``Quotas.of``). Operations are counted on the event loop only; console output and streams may
be counted on guest threads too (a request's first crossing), hence the lock.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runtime.config import Settings
from runtime.host import HostError

if TYPE_CHECKING:
    from runtime.sandbox.types import BodyStream

WINDOW_S = 60.0
"""The period of a tenant's console budget."""


@dataclass(frozen=True, slots=True)
class Limits:
    ops_per_request: int = 1000
    ops_per_tenant: int = 10_000
    log_bytes_per_request: int = 1024 * 1024
    log_bytes_per_tenant_minute: int = 16 * 1024 * 1024
    stream_bytes_per_tenant: int = 64 * 1024 * 1024
    host_streams_per_request: int = 64
    host_streams_per_tenant: int = 1024

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            settings.max_pending_ops, settings.tenant_max_pending_ops, settings.max_log_bytes,
            settings.tenant_log_bytes_per_minute, settings.tenant_stream_bytes,
            settings.max_host_streams, settings.tenant_max_host_streams,
        )


class QuotaExceeded(HostError):
    """An operation refused at a cap; its text is what the script's promise rejects with."""

    js_name = "QuotaExceeded"


class TenantQuota:
    """One tenant's ledger: operations pending, console bytes this minute, stream bytes held."""

    __slots__ = ("host_streams", "limits", "lock", "log_bytes", "ops", "streams", "window")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.ops = 0
        self.host_streams = 0  # host streams open (runtime/host/streams.py), on the event loop
        self.streams: weakref.WeakSet[BodyStream] = weakref.WeakSet()
        self.log_bytes = 0
        self.window = 0.0  # when the current minute of console output began
        self.lock = threading.Lock()

    def refuse_op(self, request_ops: int) -> QuotaExceeded | None:
        """Why one more operation is refused to a request holding ``request_ops``, or None."""
        limits = self.limits
        if request_ops >= limits.ops_per_request:
            return QuotaExceeded(
                f"too many pending operations: this request already has {request_ops} waiting "
                f"(timers included); the cap is {limits.ops_per_request} per request "
                "(WEXEC_MAX_PENDING_OPS)"
            )
        if self.ops >= limits.ops_per_tenant:
            return QuotaExceeded(
                f"too many pending operations: this tenant's requests already have {self.ops} "
                f"waiting (timers included); the cap is {limits.ops_per_tenant} per tenant "
                "(WEXEC_TENANT_MAX_PENDING_OPS)"
            )
        return None

    def refuse_host_stream(self, request_streams: int) -> QuotaExceeded | None:
        """Why one more host stream is refused to a request holding ``request_streams``, or None."""
        limits = self.limits
        if request_streams >= limits.host_streams_per_request:
            return QuotaExceeded(
                f"too many open host streams (response bodies being read): this request already "
                f"has {request_streams} open; the cap is {limits.host_streams_per_request} per "
                "request (WEXEC_MAX_HOST_STREAMS); read or cancel a body before opening another"
            )
        if self.host_streams >= limits.host_streams_per_tenant:
            return QuotaExceeded(
                f"too many open host streams (response bodies being read): this tenant's "
                f"requests already have {self.host_streams} open; the cap is "
                f"{limits.host_streams_per_tenant} per tenant (WEXEC_TENANT_MAX_HOST_STREAMS)"
            )
        return None

    def take_log_bytes(self, n: int) -> bool:
        """Whether the tenant may log ``n`` more bytes this minute (counted if so)."""
        with self.lock:
            now = time.monotonic()
            if now - self.window >= WINDOW_S:
                self.window, self.log_bytes = now, 0
            if self.log_bytes + n > self.limits.log_bytes_per_tenant_minute:
                return False
            self.log_bytes += n
            return True

    def add_stream(self, stream: BodyStream) -> None:
        """Count ``stream``'s bytes toward the tenant's as long as it lives."""
        with self.lock:
            self.streams.add(stream)

    def stream_bytes_ahead(self, allowance: int) -> int:
        """What the tenant's streams hold beyond ``allowance`` bytes each, not yet taken."""
        with self.lock:
            return sum(max(0, s.buffered - allowance) for s in self.streams)


class Quotas:
    """The tenants' ledgers of one sandbox, made on first use."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._tenants: dict[str, TenantQuota] = {}

    def of(self, tenant: str) -> TenantQuota:
        quota = self._tenants.get(tenant)
        if quota is None:
            quota = self._tenants.setdefault(tenant, TenantQuota(self.limits))
        return quota

