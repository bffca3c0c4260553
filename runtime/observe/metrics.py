"""Request figures: what `monitor/*` reports and what Prometheus scrapes.

Two views of the same requests. The request path only notes that a request ended (a tuple on a
list: `Metrics.end`); the notes are folded into the figures in batches, when `FOLD_AT` of them
wait, when `FLUSH_S` has passed, and before anything reads the figures. Inside a request the
same code costs several times what it costs in a loop over a batch, its code and data no longer
in the caches (`benches/observe.py` measures both), so the request's own turn of the event loop
does the least it can.

- `Metrics` keeps this process's figures: requests in flight (a dict insert and pop), and per
  script a count, errors, cold starts, time in the sandbox, memory high-water mark and the
  latest `SAMPLES` latencies (a ring, for p50/p95/p99). `monitor/*` reads them; under
  `--workers N` each process answers for itself (the answer says which).
- The Prometheus series (`prometheus_client`). A fold adds to each script's `Pending` counts (by
  status, by latency bucket, cold starts); they are applied to the series at most `FLUSH_S`
  after a request, before this process answers a scrape, and when it stops. prometheus_client
  takes a lock and, in multiprocess mode, writes a memory-mapped file per increment: about 4 µs
  a request for a counter and a histogram here, against a few hundred ns batched. The children
  of the series are bound to each script's labels once. Under `wexec serve`,
  `PROMETHEUS_MULTIPROC_DIR` names a folder made for that run (`server.py`), so each process
  writes its series to files there and any process's scrape adds them all up: the scrape is
  right whichever worker answers it, to within `FLUSH_S` of the other processes' latest
  requests.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SAMPLES = 1024
"""Latencies kept per script for its percentiles: the latest ones, so they follow changes."""
FLUSH_S = 1.0
"""Longest a request's Prometheus counts wait before they reach the shared series."""
FOLD_AT = 256
"""Ended requests noted before they are folded into the figures, whatever the time."""
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(slots=True)
class Active:
    """One request in flight."""

    tenant: str
    script: str
    method: str
    path: str
    started_ns: int  # time.time_ns()
    t0_ns: int  # time.perf_counter_ns()


@dataclass(slots=True)
class ScriptFigures:
    """One script's figures in this process."""

    tenant: str
    script: str
    count: int = 0
    errors: int = 0
    cold: int = 0
    sandbox_ms: float = 0.0
    total_ms: float = 0.0
    memory_peak: int = 0
    last_activity: float = 0.0
    samples: list[float] = field(default_factory=list)
    pending: Pending | None = None  # what the Prometheus series have not been given yet

    def percentile(self, q: float) -> float | None:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(slots=True)
class Pending:
    """A script's Prometheus counts since the last flush, and its series to add them to."""

    labels: tuple[str, str]  # tenant, script
    duration: Any  # the histogram's child for the script
    cold_starts: Any  # the cold-start counter's child
    by_status: dict[int, int] = field(default_factory=dict)
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))  # last: +Inf
    seconds: float = 0.0
    cold: int = 0
    dirty: bool = False
    by_status_series: dict[int, Any] = field(default_factory=dict)  # the counter's children

    def requests(self, series: _Series, status: int) -> Any:
        """The request counter's child for the script and `status`, bound once."""
        child = self.by_status_series.get(status)
        if child is None:
            child = self.by_status_series[status] = series.requests.labels(*self.labels,
                                                                           str(status))
        return child


Ended = tuple[Active, int, int, float, bool, int]
"""A request as `end` notes it: (it, its status, when it ended (perf_counter_ns), its time in
the sandbox (ms), cold, its memory)."""


class Metrics:
    """This process's request figures, and its Prometheus series (`enabled=False`: neither)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.started = time.time()
        self.active: dict[int, Active] = {}
        self._scripts: dict[tuple[str, str], ScriptFigures] = {}
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid():x}-"
        self._series = _Series() if enabled else None
        self._ended: list[Ended] = []
        self._dirty: list[Pending] = []
        self._timer: asyncio.TimerHandle | None = None

    @property
    def scripts(self) -> dict[tuple[str, str], ScriptFigures]:
        """Each script's figures, by (tenant, script), with every request that ended so far."""
        if self._ended:
            self._fold()
        return self._scripts

    def request_id(self, n: int) -> str:
        """The text of request `n`, unique across the server's processes (pid and number)."""
        return f"{self._prefix}{n:x}"

    def begin(self, tenant: str, script: str, method: str, path: str, started_ns: int,
              t0_ns: int) -> int:
        """A request to `script` started at `started_ns` (`time.time_ns()`; `t0_ns`, the same
        moment in `perf_counter_ns`); returns its number in this process (its id in the log,
        whether or not figures are kept)."""
        n = next(self._ids)
        if self.enabled:
            self.active[n] = Active(tenant, script, method, path, started_ns, t0_ns)
        return n

    def end(self, n: int, ended_ns: int, status: int, sandbox_ms: float, cold: bool,
            memory: int) -> None:
        """Request `n` ended at `ended_ns` (`perf_counter_ns`) with `status`, after `sandbox_ms`
        in the sandbox (0: it never ran); `memory`: its instance's memory, 0 if not read."""
        active = self.active.pop(n, None)
        if active is None:
            return
        ended = self._ended
        ended.append((active, status, ended_ns, sandbox_ms, cold, memory))
        if len(ended) >= FOLD_AT:
            self._fold()
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_S, self.flush)

    def _fold(self) -> None:
        """Add the requests noted since the last fold to the figures and the pending counts."""
        ended, self._ended = self._ended, []
        scripts = self._scripts
        series = self._series
        for active, status, ended_ns, sandbox_ms, cold, memory in ended:
            ms = (ended_ns - active.t0_ns) / 1e6
            key = (active.tenant, active.script)
            figures = scripts.get(key)
            if figures is None:
                figures = scripts[key] = ScriptFigures(active.tenant, active.script)
                if series is not None:
                    figures.pending = series.pending(active.tenant, active.script)
            figures.count += 1
            if status >= 500:
                figures.errors += 1
            if cold:
                figures.cold += 1
            figures.sandbox_ms += sandbox_ms
            figures.total_ms += ms
            figures.memory_peak = max(figures.memory_peak, memory)
            figures.last_activity = active.started_ns / 1e9
            samples = figures.samples
            if len(samples) < SAMPLES:
                samples.append(ms)
            else:
                samples[figures.count % SAMPLES] = ms
            pending = figures.pending
            if pending is not None:
                pending.by_status[status] = pending.by_status.get(status, 0) + 1
                seconds = ms / 1000.0
                pending.buckets[bisect_left(BUCKETS, seconds)] += 1
                pending.seconds += seconds
                if cold:
                    pending.cold += 1
                if not pending.dirty:
                    pending.dirty = True
                    self._dirty.append(pending)

    def flush(self) -> None:
        """Fold what ended, and give the Prometheus series what was counted since the last
        flush."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._fold()
        dirty, self._dirty = self._dirty, []
        series = self._series
        for pending in dirty:
            assert series is not None
            pending.dirty = False
            for status, n in pending.by_status.items():
                pending.requests(series, status).inc(n)
            pending.by_status.clear()
            series.add_observations(pending.duration, pending.buckets, pending.seconds)
            pending.buckets[:] = [0] * len(pending.buckets)
            pending.seconds = 0.0
            if pending.cold:
                pending.cold_starts.inc(pending.cold)
                pending.cold = 0

    def scrape(self) -> tuple[bytes, str]:
        """The Prometheus exposition of every process's series, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        self.flush()
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = self._series.registry if self._series is not None else CollectorRegistry()
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """This process ends: what it counted reaches the series (they stay summed)."""
        self.flush()
        if self._series is not None and os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())


class _Series:
    """This process's Prometheus series, registered once per process."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "wexec_requests", "Script requests answered, by tenant, script and status.",
            ["tenant", "script", "status"], registry=self.registry,
        )
        self.duration = Histogram(
            "wexec_request_duration_seconds", "Script request latency, to the last byte sent.",
            ["tenant", "script"], buckets=BUCKETS, registry=self.registry,
        )
        self.cold = Counter(
            "wexec_cold_starts", "Requests that ran their script's top level (no warm instance "
            "or image to start from).", ["tenant", "script"], registry=self.registry,
        )

    def pending(self, tenant: str, script: str) -> Pending:
        return Pending((tenant, script), self.duration.labels(tenant, script),
                       self.cold.labels(tenant, script))

    @staticmethod
    def add_observations(child: Any, buckets: list[int], seconds: float) -> None:
        """Add counted observations to a histogram's child at once. prometheus_client has no
        public call for it; its child keeps one value per bucket (`_buckets`, as `BUCKETS` plus
        +Inf, not cumulative) and their sum (`_sum`), which `observe` increments one by one."""
        for value, n in zip(child._buckets, buckets, strict=True):
            if n:
                value.inc(n)
        child._sum.inc(seconds)


def multiprocess_dir(data_dir: Path) -> Path:
    """A new, empty folder for one run's Prometheus files (`wexec serve` exports it as
    `PROMETHEUS_MULTIPROC_DIR` before any server process starts): a run never adds up the
    counters a previous run left."""
    parent = data_dir / "metrics"
    parent.mkdir(parents=True, exist_ok=True)
    for old in parent.glob("run-*"):  # runs that ended; a live run's folder is recreated below
        if not _owner_alive(old):
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=parent))


def _owner_alive(folder: Path) -> bool:
    try:
        pid = int(folder.name.split("-")[1])
    except (IndexError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
