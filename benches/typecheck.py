"""Type-check latency of the pinned TypeScript checker (runtime/compiler/tsc.py), no HTTP.

    python benches/typecheck.py [--n 50]

Prints the cold start (node, TypeScript and its libraries loaded, first check) and the warm
p50/p95 per check of a typical script; the target is well under 1 s warm.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runtime.compiler.tsc import Checker, installed
from runtime.config import Settings

SCRIPT = """const name: string = String(metadata.query.name ?? 'world');
const hits: number = (shared.hits ?? 0) + 1;
shared.hits = hits;
const upstream = await fetch('https://example.com/x', { method: 'POST', body: JSON.stringify(req.body) });
const text: string = await fs.read('notes.txt');
if (!upstream.ok) return res.status(502).json({ error: 'upstream failed' });
return res.json({ hello: name, hits, text, n: %d });
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50)
    n = parser.parse_args().n
    cache = Settings().cache_dir
    installed(cache)  # the npm install is once per machine, not part of the figures
    checker = Checker(cache)
    start = time.perf_counter()
    assert checker.check(SCRIPT % 0) == []
    cold = time.perf_counter() - start
    times = []
    for i in range(n):
        start = time.perf_counter()
        assert checker.check(SCRIPT % (i + 1)) == []
        times.append(time.perf_counter() - start)
    checker.close()
    times.sort()
    print(f"cold start + first check: {cold * 1000:.0f} ms")
    print(f"warm check: p50 {statistics.median(times) * 1000:.1f} ms, "
          f"p95 {times[int(len(times) * 0.95) - 1] * 1000:.1f} ms (target: well under 1000 ms)")


if __name__ == "__main__":
    main()
