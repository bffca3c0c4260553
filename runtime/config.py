"""Every knob of wexec in one pydantic settings object (environment prefix ``WEXEC_``)."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from runtime.host.ai import AISettings
from runtime.host.fetch.settings import FetchSettings
from runtime.host.fs import FsSettings
from runtime.host.isolate import IsolateSettings
from runtime.host.shared import SharedSettings
from runtime.host.websocket.settings import WebSocketSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout wexec runs from: it holds ``guest/``, ``build/`` and the example ``scripts/``."""

MiB = 1024 * 1024
_TOKEN_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


class Settings(
    FetchSettings, FsSettings, SharedSettings, AISettings, IsolateSettings, WebSocketSettings,
    BaseSettings,
):
    """Settings read from ``WEXEC_*`` environment variables, overridable by CLI flags."""

    model_config = SettingsConfigDict(env_prefix="WEXEC_", extra="ignore")

    scripts: Path = Field(REPO_ROOT / "scripts", description="Scripts of the default tenant.")
    data: Path | None = Field(None, description="State, logs and caches; default .wexec/ beside scripts.")
    cache: Path | None = Field(
        None, description="Build and compile caches; default ~/.cache/wexec (shared by checkouts)."
    )

    # Sandbox limits.
    memory_limit: int = Field(64 * MiB, description="Linear-memory cap per script instance, bytes.")
    timeout_ms: int = Field(3_600_000, description="Default @timeout; 0 means unlimited.")
    max_timeout_ms: int = Field(3_600_000, description="Cap on any script's @timeout; 0 = no cap.")
    tenant_max_timeout_ms: dict[str, int] = Field(
        default_factory=dict,
        description='Per-tenant caps overriding max_timeout_ms, e.g. {"alice/1": 60000} '
        "(JSON in WEXEC_TENANT_MAX_TIMEOUT_MS).",
    )
    epoch_tick_ms: int = Field(10, description="Epoch ticker period: how finely deadlines are checked.")
    guest_threads: int = Field(
        64, ge=1, description="Most threads that run guest code off the event loop; the pool "
        "grows to it on demand, so each tenant with nothing running gets a thread at once.",
    )
    tenant_guest_threads: int = Field(
        2, ge=1, description="Guest threads one tenant may hold at once; its further requests "
        "wait in the tenant's own queue, never in other tenants' way.",
    )
    serverless_images: int = Field(
        256, ge=0, description="Serverless scripts whose memory after their top level ran is "
        "kept as an image that fresh instances start from, skipping the load (only for a top "
        "level that read no clock, randomness or host and logged nothing); 0 turns this off.",
    )
    serverless_image_bytes: int = Field(
        256 * MiB, ge=0, description="What those images may take in all (the pages each top "
        "level wrote); past it, the least recently used are dropped.",
    )
    inline_budget_ms: float = Field(
        5.0,
        description="Slice a serverless request may run on the event loop before it is rerun "
        "on the guest threads (and its script runs there for a while: a second at first, doubling up to a minute while it keeps outrunning the slice).",
    )

    # What a script may make the host hold (issue 10; runtime/host/quotas.py).
    max_pending_ops: int = Field(
        1000, ge=1, description="Host operations (timers included) one request may have pending "
        "at once; past it the operation's promise rejects (a timer fails its request).",
    )
    tenant_max_pending_ops: int = Field(
        10_000, ge=1, description="Host operations pending at once across all of one tenant's "
        "requests and instances, per server process.",
    )
    max_log_bytes: int = Field(
        1 * MiB, ge=0, description="Console output one request may log (UTF-8 bytes, plus 16 "
        "per line); past it lines are dropped and counted in one record.",
    )
    tenant_log_bytes_per_minute: int = Field(
        16 * MiB, ge=0, description="Console output one tenant's requests may log per minute "
        "and server process; past it lines are dropped and counted.",
    )
    max_host_streams: int = Field(
        64, ge=1, description="Host streams (response bodies a script reads as they arrive: "
        "fetch, AI) one request may have open at once; past it opening one more fails.",
    )
    tenant_max_host_streams: int = Field(
        1024, ge=1, description="Host streams open at once across all of one tenant's requests, "
        "per server process.",
    )
    tenant_stream_bytes: int = Field(
        64 * MiB, ge=0, description="Bytes one tenant's streamed responses may hold beyond the "
        "256 KiB each may run ahead of its client; past it the stream being written fails.",
    )

    # Logs, metrics, tracing (runtime/observe/).
    log_rotate_bytes: int = Field(
        8 * MiB, ge=64 * 1024, description="Size past which a tenant's request log is rotated "
        "(renamed aside and compressed with zstd).",
    )
    tenant_log_disk_bytes: int = Field(
        64 * MiB, ge=0, description="What one tenant's logs, current and rotated, may take on "
        "disk; past it its oldest rotated files are removed.",
    )
    metrics: bool = Field(
        True, description="Count requests for monitor/* and the Prometheus scrape (off: the "
        "request path does no counting; monitor/ answers zeros).",
    )
    tracing: Literal["off", "otlp", "memory"] = Field(
        "off", description="Spans per invocation (OpenTelemetry): `otlp` exports to "
        "OTEL_EXPORTER_OTLP_ENDPOINT (set by default when that variable is), `memory` keeps them "
        "in the process for tests; `off` makes no span objects.",
    )

    # HTTP server (`wexec serve`).
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8080, description="Port to listen on.")
    server: Literal["granian", "uvicorn", "hypercorn"] = Field(
        "granian", description="ASGI server (granian measured fastest, benches/http_load.py); "
        "hypercorn for HTTP/2 and HTTP/3."
    )
    loop: Literal["uvloop", "asyncio"] = Field(
        "uvloop", description="Server event loop: uvloop is faster; the standard library's "
        "asyncio is there to measure against (benches/http_load.py)."
    )
    workers: int = Field(1, ge=1, description="Server processes, each with its own sandbox.")
    scheduler: Literal["batch", "normal"] = Field(
        "batch", description="Linux scheduling policy of the server processes: under SCHED_BATCH "
        "their own threads (the server's I/O threads, the event loop) stop preempting one another "
        "on every wake-up (benches/http_load.py: +10% req/s for a bare app, +35% for serverless "
        "scripts, on granian); `normal` keeps the default policy.",
    )
    max_body_bytes: int = Field(10 * MiB, description="Largest request body; 413 past it.")
    max_inflight: int = Field(1024, description="Requests in progress per process; 503 past it.")
    max_queue: int = Field(256, description="Requests waiting on one script's @concurrent; 503 past it.")

    # What a response and a client may cost the server (issue 10: hostile scripts and clients).
    max_response_headers: int = Field(
        1000, ge=1, description="Headers one script response may have; past it the answer is a 500.",
    )
    max_response_header_bytes: int = Field(
        64 * 1024, ge=1, description="Bytes of header names and values one script response may "
        "have; past it the answer is a 500.",
    )
    max_connections: int = Field(
        10_000, ge=1, description="Open client connections per server process (granian's "
        "backpressure, uvicorn's limit_concurrency); the open-files limit is raised to fit.",
    )
    header_read_timeout_ms: int = Field(
        10_000, ge=1, description="Time a client has to send a request's headers, from connecting "
        "or from the previous response: idle and slow (slowloris) connections are closed past it.",
    )
    keep_alive_timeout_ms: int = Field(
        5_000, ge=1, description="Idle time after a response before the connection is closed "
        "(uvicorn, hypercorn; granian closes idle connections at the header-read timeout).",
    )
    backlog: int = Field(
        4096, ge=128, description="Connections the kernel queues before the server accepts them "
        "(capped by net.core.somaxconn).",
    )
    restart_on_crash: bool = Field(
        True, description="Restart a server process that dies unexpectedly (a crashed worker), "
        "so one crash costs that process's requests, not the service.",
    )
    supervisor_pid: int | None = Field(
        None, description="Set by `wexec serve` for the processes it supervises, not by hand: "
        "each app tells it with SIGUSR1 once started, so a server that dies before that failed "
        "to start and is not restarted in a loop.",
    )
    tenants_root: Path | None = Field(
        None,
        description="Multi-tenant layout {root}/{subdomain}/{execId}/; the default tenant is "
        "default/1 in it. Unset: one tenant, default/1, whose scripts are `scripts`.",
    )
    tenant_host_pattern: str = Field(
        r"^(?P<subdomain>[a-z0-9][a-z0-9-]*?)-(?P<exec_id>[0-9]+)\.",
        description="Regex on the Host header naming the tenant (groups subdomain, exec_id); "
        "a request that matches no known tenant goes to default/1.",
    )
    reload_interval_ms: int = Field(
        200, description="How often scripts are re-scanned; a file must be unchanged for one "
        "interval before its new version is compiled and served.",
    )
    max_tenant_entries: int = Field(
        10_000, ge=1, description="Files and folders read in one tenant's folder per scan "
        "(links inside it count each time they are followed); past it the rest is not served, "
        "so one tenant's folder cannot slow the re-scan of every tenant.",
    )

    npm_timeout_s: float = Field(
        300, gt=0, description="Longest one npm run of the management API (dependencies/install, "
        "package/install) may take before it is stopped and answered 504.",
    )

    # Who may call the management API (runtime/api/access.py).
    api_token: str | None = Field(
        None, description="Bearer token that grants the management API for every tenant. With "
        "neither it nor api_tenant_tokens, the API answers only loopback clients on a loopback "
        "bind, and `wexec serve` refuses any other address.",
    )
    api_tenant_tokens: dict[str, str] = Field(
        default_factory=dict, description='Tokens that each grant one tenant, stored hashed: '
        '{"alice/1": "sha256:<hex>"} (JSON in WEXEC_API_TENANT_TOKENS); `wexec token hash` '
        "prints the hash of a token.",
    )

    @field_validator("api_tenant_tokens")
    @classmethod
    def _tenant_tokens(cls, tokens: dict[str, str]) -> dict[str, str]:
        from runtime.catalog.tenants import is_tenant_name  # the catalog imports this module

        for tenant, hashed in tokens.items():
            subdomain, slash, exec_id = tenant.partition("/")
            if not slash or not is_tenant_name(subdomain) or not is_tenant_name(exec_id):
                raise ValueError(f"api_tenant_tokens: {tenant!r} is not a tenant; write "
                                 "subdomain/execId, e.g. alice/1")
            if not _TOKEN_HASH.match(hashed):
                raise ValueError(f"api_tenant_tokens[{tenant!r}]: expected sha256:<64 hex "
                                 "digits>, as `wexec token hash` prints it")
        return tokens

    def effective_timeout(self, requested: int | None, tenant: str | None = None) -> int | None:
        """A script's ``@timeout`` (None: the default; 0: unlimited), capped; None = no limit."""
        timeout = self.timeout_ms if requested is None else requested
        cap = self.tenant_max_timeout_ms.get(tenant or "", self.max_timeout_ms)
        if timeout == 0:
            return cap or None
        return min(timeout, cap) if cap else timeout

    @cached_property
    def data_dir(self) -> Path:
        return self.data if self.data is not None else self.scripts.parent / ".wexec"

    @cached_property
    def cache_dir(self) -> Path:
        if self.cache is not None:
            return self.cache
        return Path.home() / ".cache" / "wexec"
