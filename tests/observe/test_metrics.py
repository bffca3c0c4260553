"""Request figures: batched Prometheus counts equal what counting one by one gives."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from runtime.observe import metrics
from runtime.observe.metrics import BUCKETS, Metrics


def _request(m: Metrics, script: str, status: int, ms: float = 5.0, cold: bool = False,
             memory: int = 0) -> None:
    """One request of `ms` milliseconds through `begin` and `end`, as the gateway makes them."""
    n = m.begin("t/1", script, "GET", f"/{script}", time.time_ns(), 1_000_000_000)
    m.end(n, 1_000_000_000 + int(ms * 1e6), status, 0.1, cold, memory)


def _lines(text: bytes, prefix: str) -> list[str]:
    return sorted(line for line in text.decode().splitlines()
                  if line.startswith(prefix) and "_created" not in line)


async def test_batched_counts_equal_counting_each_request() -> None:
    m = Metrics(True)
    for status in (200, 200, 500, 404, 200):
        _request(m, "a.ts", status, cold=status == 404, memory=1000)
    body = m.scrape()[0]  # a scrape flushes first
    assert _lines(body, "wexec_requests_total") == [
        'wexec_requests_total{script="a.ts",status="200",tenant="t/1"} 3.0',
        'wexec_requests_total{script="a.ts",status="404",tenant="t/1"} 1.0',
        'wexec_requests_total{script="a.ts",status="500",tenant="t/1"} 1.0',
    ]
    assert _lines(body, "wexec_cold_starts_total") == [
        'wexec_cold_starts_total{script="a.ts",tenant="t/1"} 1.0']


def test_a_batch_of_latencies_fills_the_histogram_as_observing_each_would() -> None:
    seconds = [0.0005, 0.001, 0.0011, 0.004, 0.01, 0.2, 0.25, 2.0, 29.0, 30.0, 45.0, 0.0]
    registries = [CollectorRegistry(), CollectorRegistry()]
    one_by_one, batched = (
        Histogram("h", "h", ["s"], buckets=BUCKETS, registry=r).labels("x") for r in registries
    )
    buckets = [0] * (len(BUCKETS) + 1)
    for value in seconds:
        one_by_one.observe(value)
        buckets[metrics.bisect_left(BUCKETS, value)] += 1
    metrics._Series.add_observations(batched, buckets, sum(seconds))
    assert _lines(generate_latest(registries[1]), "h_") == _lines(
        generate_latest(registries[0]), "h_")


async def test_counts_reach_the_series_within_the_flush_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics, "FLUSH_S", 0.05)
    m = Metrics(True)
    _request(m, "b.ts", 200)
    series = m._series
    assert series is not None
    counted = series.requests.labels("t/1", "b.ts", "200")
    assert counted._value.get() == 0
    await asyncio.sleep(0.3)
    assert counted._value.get() == 1


def test_metrics_off_keeps_nothing() -> None:
    m = Metrics(False)
    _request(m, "c.ts", 200)
    assert not m.scripts and not m.active


async def test_figures_read_at_any_time_count_every_request_ended() -> None:
    """Requests are folded into the figures in batches; a reader sees them all, whenever it
    reads, and the batches add up as folding each request would."""
    m = Metrics(True)
    latencies = [1.0 + n % 7 for n in range(metrics.FOLD_AT + 10)]  # past one batch
    for n, ms in enumerate(latencies):
        _request(m, "d.ts", 500 if n % 10 == 0 else 200, ms, cold=n == 0, memory=n)
        if n == 3:
            figures = m.scripts[("t/1", "d.ts")]
            assert (figures.count, figures.errors, figures.cold, figures.memory_peak) == (4, 1, 1, 3)
    figures = m.scripts[("t/1", "d.ts")]
    assert figures.count == len(latencies) and figures.errors == 27 and figures.cold == 1
    assert figures.memory_peak == len(latencies) - 1
    assert figures.total_ms == pytest.approx(sum(latencies))
    assert figures.percentile(0.5) == sorted(latencies)[len(latencies) // 2]
    body = m.scrape()[0].decode()
    assert f'wexec_request_duration_seconds_count{{script="d.ts",tenant="t/1"}} {len(latencies)}.0' in body
    m.close()
