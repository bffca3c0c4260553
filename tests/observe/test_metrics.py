"""Request figures: batched Prometheus counts equal what counting one by one gives."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from runtime.observe import metrics
from runtime.observe.metrics import BUCKETS, Metrics


def _lines(text: bytes, prefix: str) -> list[str]:
    return sorted(line for line in text.decode().splitlines()
                  if line.startswith(prefix) and "_created" not in line)


async def test_batched_counts_equal_counting_each_request() -> None:
    m = Metrics(True)
    for status in (200, 200, 500, 404, 200):
        m.end(m.begin("t/1", "a.ts", "GET", "/a"), status, 0.1, status == 404, 1000)
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
    m.end(m.begin("t/1", "b.ts", "GET", "/b"), 200, 0.1, False, 0)
    series = m._series
    assert series is not None
    counted = series.requests.labels("t/1", "b.ts", "200")
    assert counted._value.get() == 0
    await asyncio.sleep(0.3)
    assert counted._value.get() == 1


def test_metrics_off_keeps_nothing() -> None:
    m = Metrics(False)
    m.end(m.begin("t/1", "c.ts", "GET", "/c"), 200, 0.1, False, 0)
    assert not m.scripts and not m.active
