"""Request figures: what `monitor/*` reports and what Prometheus scrapes.

Two views of the same requests, each as cheap as it can be on the request path:

- `Metrics` keeps this process's figures in plain Python objects: requests in flight (a dict
  insert and pop), and per script a count, errors, cold starts, time in the sandbox, memory
  high-water mark and the latest `SAMPLES` latencies (a ring, for p50/p95/p99). `monitor/*`
  reads them; under `--workers N` each process answers for itself (the answer says which).
- The Prometheus series (`prometheus_client`) are counted at the same moment. Under
  `wexec serve`, `PROMETHEUS_MULTIPROC_DIR` names a folder made for that run (`server.py`), so
  each process writes its counters to memory-mapped files there and any process's scrape adds
  them all up: the scrape is right whichever worker answers it. The labelled series of a script
  are looked up once and kept with its figures, so a request does no label lookup.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
SAMPLES = 1024
"""Latencies kept per script for its percentiles: the latest ones, so they follow changes."""
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(slots=True)
class Active:
    """One request in flight."""

    tenant: str
    script: str
    method: str
    path: str
    started: float  # time.time()
    t0: float  # time.perf_counter()


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
    series: Any = None  # (requests counter child by status, duration histogram child, cold)

    def percentile(self, q: float) -> float | None:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Metrics:
    """This process's request figures, and its Prometheus series (`enabled=False`: neither)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.started = time.time()
        self.active: dict[int, Active] = {}
        self.scripts: dict[tuple[str, str], ScriptFigures] = {}
        self.requests = 0
        self.errors = 0
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid():x}-"
        self._series = _Series() if enabled else None

    def request_id(self, n: int) -> str:
        """The text of request `n`, unique across the server's processes (pid and number)."""
        return f"{self._prefix}{n:x}"

    def begin(self, tenant: str, script: str, method: str, path: str) -> int:
        """A request to `script` started; returns its number in this process."""
        n = next(self._ids)
        self.active[n] = Active(tenant, script, method, path, time.time(), time.perf_counter())
        return n

    def end(self, n: int, status: int, sandbox_ms: float, cold: bool, memory: int) -> None:
        """Request `n` ended with `status` after `sandbox_ms` in the sandbox (0: it never ran)."""
        active = self.active.pop(n, None)
        if active is None:
            return
        ms = (time.perf_counter() - active.t0) * 1000.0
        key = (active.tenant, active.script)
        figures = self.scripts.get(key)
        if figures is None:
            figures = self.scripts[key] = ScriptFigures(active.tenant, active.script)
            if self._series is not None:
                figures.series = self._series.of(active.tenant, active.script)
        error = status >= 500
        self.requests += 1
        figures.count += 1
        if error:
            self.errors += 1
            figures.errors += 1
        if cold:
            figures.cold += 1
        figures.sandbox_ms += sandbox_ms
        figures.total_ms += ms
        figures.memory_peak = max(figures.memory_peak, memory)
        figures.last_activity = active.started
        samples = figures.samples
        if len(samples) < SAMPLES:
            samples.append(ms)
        else:
            samples[figures.count % SAMPLES] = ms
        series = figures.series
        if series is not None:
            by_status, duration, cold_starts = series
            child = by_status.get(status)
            if child is None:
                child = by_status[status] = self._series.requests.labels(  # type: ignore[union-attr]
                    active.tenant, active.script, str(status))
            child.inc()
            duration.observe(ms / 1000.0)
            if cold:
                cold_starts.inc()

    def scrape(self) -> tuple[bytes, str]:
        """The Prometheus exposition of every process's series, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = self._series.registry if self._series is not None else CollectorRegistry()
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """This process ends: its in-flight gauge stops counting (the counters stay summed)."""
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

    def of(self, tenant: str, script: str) -> tuple[dict[int, Any], Any, Any]:
        return {}, self.duration.labels(tenant, script), self.cold.labels(tenant, script)


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
