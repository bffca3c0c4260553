"""What observing a request costs on its hot path: step by step (timeit), and whole requests.

    python benches/observe.py [--n 5000] [--rounds 40] [--per-round 400] [--runs 3]
    python benches/observe.py --against /tmp/old-checkout    # the same, for two checkouts

Steps, per request, in nanoseconds: the request figures and Prometheus series (`Metrics.begin` +
`Metrics.end`, and their share of folding a batch into the figures) with one process's registry
and with the multiprocess files `wexec serve` uses; tracing off (the checks and the shared no-op
context the request path passes through); and the request-log line at `standard` (its entry
queued, and its share of rendering and writing a batch). Each row runs in its own interpreter, since
prometheus_client picks its multiprocess value class at import.

Whole requests, in CPU microseconds per request: apps in one interpreter, driven through their
ASGI entry (no sockets, no server: the noise a loopback and a server's own work add is larger
than the figure), one with observability as it is by default (metrics on, request log at
`standard`), one with it off (`WEXEC_METRICS=false`, scripts at `@log-level none`), and a second
one with it off, tracing off in all; a worker hello and a serverless hello each, 16 requests at
a time. The apps take turns every 16 requests (which goes first rotating too), so whatever else
the machine does weighs on all alike; a round sums `--per-round` requests an app. The time is
the event loop thread's CPU time: every step of observing runs there, and a worker's crossings,
which run on guest threads, are left out with their scheduling noise. The serverless hello's
inline slice is made long, so that a moment without a core on a busy machine does not send one
app's hello to the guest threads for a while and not the other's. A row's cost of observing is the
median over rounds of (observed - off), with its interquartile range; its noise floor is the same
figure between the two apps with it off. `--runs` interpreters per checkout, alternating between
the two checkouts with `--against` (each imported from its own root).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

ROWS = {
    "metrics (one process)": ("", """
import time
from runtime.observe.metrics import Metrics
m = Metrics(True)
def one():
    t0 = time.perf_counter_ns()
    n = m.begin("default/1", "hello.ts", "GET", "/hello", time.time_ns(), t0)
    m.end(n, t0 + 50_000, 200, 0.05, False, 2_000_000)
"""),
    "metrics (multiprocess files)": ("multiproc", """
import time
from runtime.observe.metrics import Metrics
m = Metrics(True)
def one():
    t0 = time.perf_counter_ns()
    n = m.begin("default/1", "hello.ts", "GET", "/hello", time.time_ns(), t0)
    m.end(n, t0 + 50_000, 200, 0.05, False, 2_000_000)
"""),
    "metrics off (WEXEC_METRICS=false: a request number)": ("", """
import time
from runtime.observe.metrics import Metrics
m = Metrics(False)
def one():
    m.begin("default/1", "hello.ts", "GET", "/hello", time.time_ns(), time.perf_counter_ns())
"""),
    "(calibration: an empty function call)": ("", """
def one():
    pass
"""),
    "tracing off (3 checks, 3 no-op contexts)": ("", """
from runtime.observe import tracing
def one():
    if tracing.tracer is not None: pass
    with tracing.maybe("sandbox"):
        if tracing.tracer is not None: pass
    with tracing.maybe("response"):
        pass
    with tracing.maybe("instantiate"):
        pass
    if tracing.tracer is not None: pass
"""),
    "request log line at standard (queue, render, write)": ("", """
import tempfile
from pathlib import Path
from runtime.observe.access_log import AccessLog, Entry
from runtime.sandbox.types import LogRecord
log = AccessLog(Path(tempfile.mkdtemp()))
headers = {"host": "localhost:8080", "user-agent": "bench", "accept": "*/*"}
def one():
    entry = Entry("hello.ts", "GET", "/hello", 200, 1_763_000_000_000_000_000, 0.25, {},
                  "127.0.0.1", headers, b"", [("content-type", "application/json")], 20,
                  [LogRecord("log", "served one")], None, "1a2b-3c")
    log.add("default-1", entry, "standard", False, None)  # every FLUSH_LINES: a batch written
"""),
}

TIMER = """
import asyncio, timeit
{setup}
n = {n}

async def timed():  # on a running loop, as the request path is (timers are armed on it)
    return min(timeit.repeat(one, number=n, repeat=50)) / n * 1e9

print(f"{{asyncio.run(timed()):.0f}}")
"""


HELLO = "return { message: 'hello' };"
MODES = ("worker", "serverless")
SIDES = ("on", "off", "off again")
"""Observed, off, and a second app with it off: what the method reads between two identical
apps is its noise floor."""
CONCURRENT = 16


async def _whole(rounds: int, per_round: int) -> dict[str, dict[str, list[float]]]:
    """CPU µs per request of each round, by mode and side (in the interpreter `--whole` runs)."""
    from runtime.app import create_app
    from runtime.config import Settings

    folder = Path(tempfile.mkdtemp(prefix="wexec-observe-"))
    apps = {}
    for side in SIDES:
        for mode in MODES:
            script = folder / side / mode / "hello.ts"
            script.parent.mkdir(parents=True)
            level = "" if side == "on" else "// @log-level none\n"
            script.write_text(f"// @mode {mode}\n{level}{HELLO}\n")
        apps[side] = create_app(Settings(  # type: ignore[call-arg]
            scripts=folder / side, data=folder / f"data-{side}", metrics=side == "on",
            reload_interval_ms=3_600_000, inline_budget_ms=1000.0))
    lifespans = [_Lifespan(app) for app in apps.values()]
    for lifespan in lifespans:
        await lifespan.start()
    figures: dict[str, dict[str, list[float]]] = {m: {s: [] for s in SIDES} for m in MODES}
    try:
        for mode in MODES:  # warm: images made, instances started, caches filled
            for app in apps.values():
                await _requests(app, f"/{mode}/hello", 300)
        for _ in range(rounds):
            for mode in MODES:
                spent = dict.fromkeys(SIDES, 0)
                for k in range(per_round // CONCURRENT):
                    for side in SIDES[k % 3:] + SIDES[:k % 3]:
                        t0 = time.thread_time_ns()
                        await _requests(apps[side], f"/{mode}/hello", CONCURRENT)
                        spent[side] += time.thread_time_ns() - t0
                for side in SIDES:
                    figures[mode][side].append(spent[side] / per_round / 1000)
    finally:
        for lifespan in lifespans:
            await lifespan.stop()
    return figures


async def _requests(app: Any, path: str, count: int) -> None:
    """`count` GET requests through the app's ASGI entry, `CONCURRENT` at a time, as a server
    under load makes them (a worker's requests then share crossings, as they do there)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "headers": [(b"host", b"localhost:8080"), (b"user-agent", b"bench"),
                    (b"accept", b"*/*")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080), "root_path": "",
    }
    statuses = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for start in range(0, count, CONCURRENT):
        await asyncio.gather(*(app(dict(scope), receive, send)
                               for _ in range(min(CONCURRENT, count - start))))
    if set(statuses) != {200}:
        raise SystemExit(f"{path} answered {sorted(set(statuses))}, not 200")


class _Lifespan:
    """The ASGI lifespan protocol, driven as a server drives it."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
        self._task = asyncio.create_task(self._app(scope, self._inbox.get, self._outbox.put))
        await self._event("startup")

    async def stop(self) -> None:
        await self._event("shutdown")
        assert self._task is not None
        await self._task

    async def _event(self, event: str) -> None:
        await self._inbox.put({"type": f"lifespan.{event}"})
        answer = await asyncio.wait_for(self._outbox.get(), 120)
        if answer["type"] != f"lifespan.{event}.complete":
            raise SystemExit(f"the app's {event} failed: {answer}")


def _steps(n: int) -> None:
    print(f"{'hot-path step':48} ns/request")
    for name, (mode, setup) in ROWS.items():
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        with tempfile.TemporaryDirectory() as folder:
            if mode == "multiproc":
                env["PROMETHEUS_MULTIPROC_DIR"] = folder
            out = subprocess.run(
                [sys.executable, "-c", TIMER.format(setup=setup, n=n)], cwd=ROOT, env=env,
                capture_output=True, text=True, check=True,
            )
        print(f"{name:48} {out.stdout.strip():>10}")


def _whole_runs(roots: list[Path], runs: int, rounds: int, per_round: int) -> None:
    """`runs` interpreters per checkout, alternating between checkouts, then one table."""
    pooled = {root: {m: {s: [] for s in SIDES} for m in MODES} for root in roots}
    for _ in range(runs):
        for root in roots:
            env = {k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR",
                                                                      "WEXEC_METRICS")}
            env["PYTHONPATH"] = str(root)
            out = subprocess.run(
                [sys.executable, __file__, "--whole", str(rounds), str(per_round)], cwd=root,
                env=env, capture_output=True, text=True, check=False,
            )
            if out.returncode != 0:
                raise SystemExit(f"the whole-request run in {root} failed:\n{out.stderr}")
            figures = json.loads(out.stdout.strip().splitlines()[-1])
            for mode in MODES:
                for side in SIDES:
                    pooled[root][mode][side] += figures[mode][side]
    print(f"\nwhole request, CPU µs/request, in-process ASGI ({runs} runs x {rounds} rounds x "
          f"{per_round} requests; median [best])")
    print(f"{'checkout':10} {'mode':11} {'observed':>14} {'off':>14} {'cost (IQR)':>19} "
          f"{'noise floor (IQR)':>19}")
    for root in roots:
        label = _revision(root)
        for mode in MODES:
            sides = pooled[root][mode]
            print(f"{label:10} {mode:11} {_cell(sides['on']):>14} {_cell(sides['off']):>14} "
                  f"{_paired(sides['on'], sides['off']):>19} "
                  f"{_paired(sides['off again'], sides['off']):>19}")


def _paired(a: list[float], b: list[float]) -> str:
    """The median of a - b over rounds, with its interquartile range."""
    cost = sorted(x - y for x, y in zip(a, b, strict=True))
    q1, q3 = cost[len(cost) // 4], cost[3 * len(cost) // 4]
    return f"{statistics.median(cost):.1f} ({q1:.1f}..{q3:.1f})"


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} [{min(values):.1f}]"


def _revision(root: Path) -> str:
    out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True, check=False)
    dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "runtime"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return (out.stdout.strip() or root.name) + ("+" if dirty else "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=5_000, help="calls per repeat (best of 50: the machine may be shared)")
    ap.add_argument("--rounds", type=int, default=40, help="whole-request rounds per side, per run")
    ap.add_argument("--per-round", type=int, default=400, help="requests in a round")
    ap.add_argument("--runs", type=int, default=3, help="interpreters per checkout")
    ap.add_argument("--against", type=Path, help="another checkout, measured the same way")
    ap.add_argument("--only", choices=("steps", "whole"), help="one of the two tables")
    ap.add_argument("--whole", nargs=2, type=int, metavar=("ROUNDS", "PER_ROUND"),
                    help=argparse.SUPPRESS)  # the interpreter of one whole-request run
    args = ap.parse_args()
    if args.whole:
        print(json.dumps(asyncio.run(_whole(*args.whole))))
        return
    if args.only != "whole":
        _steps(args.n)
    if args.only != "steps":
        roots = [ROOT] if args.against is None else [args.against.resolve(), ROOT]
        _whole_runs(roots, args.runs, args.rounds, args.per_round)


if __name__ == "__main__":
    main()
