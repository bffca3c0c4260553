"""What observing a request costs on its hot path, per request, in nanoseconds (timeit).

    python benches/observe.py [--n 200000]

Rows: the request figures and Prometheus series (`Metrics.begin` + `Metrics.end`) with one
process's registry and with the multiprocess files `wexec serve` uses; tracing off (the checks
and the shared no-op context the request path passes through); and the request-log line at
`standard` (render + queue). Each row runs in its own interpreter, since prometheus_client picks
its multiprocess value class at import. The whole-request figure is `http_load.py`'s, run with
`WEXEC_METRICS=false` against the default.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ROWS = {
    "metrics (one process)": ("", """
from runtime.observe.metrics import Metrics
m = Metrics(True)
def one():
    m.end(m.begin("default/1", "hello.ts", "GET", "/hello"), 200, 0.05, False, 2_000_000)
"""),
    "metrics (multiprocess files)": ("multiproc", """
from runtime.observe.metrics import Metrics
m = Metrics(True)
def one():
    m.end(m.begin("default/1", "hello.ts", "GET", "/hello"), 200, 0.05, False, 2_000_000)
"""),
    "metrics off (WEXEC_METRICS=false: a request number)": ("", """
from runtime.observe.metrics import Metrics
m = Metrics(False)
def one():
    m.begin("default/1", "hello.ts", "GET", "/hello")
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
    "request log line at standard (render + queue)": ("", """
import tempfile
from pathlib import Path
from runtime.observe.access_log import AccessLog, Entry, render
from runtime.sandbox.types import LogRecord
log = AccessLog(Path(tempfile.mkdtemp()))
entry = Entry("hello.ts", "GET", "/hello", 200, 1_763_000_000_000_000_000, 0.25, {}, "127.0.0.1",
              console=[LogRecord("log", "served one")], request_id="1a2b-3c")
def one():
    log.write("default-1", render(entry, "standard", False), None)
    if log._pending_bytes > 60000:  # the flush's write is the disk's cost, not this row's
        log._pending.clear(); log._pending_bytes = 0
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=5_000, help="calls per repeat (best of 50: the machine may be shared)")
    args = ap.parse_args()
    print(f"{'hot-path step':48} ns/request")
    for name, (mode, setup) in ROWS.items():
        env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
        with tempfile.TemporaryDirectory() as folder:
            if mode == "multiproc":
                env["PROMETHEUS_MULTIPROC_DIR"] = folder
            out = subprocess.run(
                [sys.executable, "-c", TIMER.format(setup=setup, n=args.n)], cwd=ROOT, env=env,
                capture_output=True, text=True, check=True,
            )
        print(f"{name:48} {out.stdout.strip():>10}")


if __name__ == "__main__":
    main()
