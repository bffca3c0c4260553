"""Host capabilities under HTTP load: what a fetch costs a script, the capability figures of
issue 12.

    python benches/capabilities.py [--duration 5 | --quick]

Rows, each `wrk` on GET /hello of its own server (wexec's default server, pinned to core 0; wrk
and the upstream on core 1), measured in the same run:

- direct: a wexec worker hello;
- composed: a wexec worker whose /hello is `return fetch('/target')`, the same hello answered
  in-process (target: it costs at most 1.5x the direct request, i.e. direct/composed req/s <= 1.5);
- proxy-bare: a bare Starlette app forwarding /hello to a local upstream with httpx;
- proxy-bare-aiohttp: the same with aiohttp, the client wexec's fetch uses (httpx is several
  times slower here, so this is the stricter baseline; printed, no target);
- proxy-worker: a wexec worker script doing the same with `fetch` (target: >= 0.5x proxy-bare).

The upstream is apps/bare.py on the same server software. Reuses benches/http_load.py's
process, warm-up and wrk handling.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import http_load as load

HELLO = "// @mode worker\nreturn { message: 'hello' };\n"
COMPOSED = "// @mode worker\nreturn fetch('/target');\n"
TARGET_COMPOSED = 1.5
TARGET_PROXY = 0.5


def wexec_argv(scripts: Path, port: int, server: str) -> list[str]:
    return load._py("-m", "runtime.cli", "serve", "--scripts", str(scripts), "--port", str(port),
                    "--server", server)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=5, help="seconds per measured run (default 5)")
    ap.add_argument("--quick", action="store_true", help="3 s runs")
    ap.add_argument("--warmup", type=float, default=2)
    ap.add_argument("--connections", type=int, default=64)
    args = ap.parse_args()
    if args.quick:
        args.duration = 3
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        print("benches/capabilities.py needs `wrk` and `taskset` on PATH", file=sys.stderr)
        return 2
    server = load.default_server()
    print(f"wexec capability benchmarks: {server}, server on core {load.SERVER_CORE}, wrk and the "
          f"upstream on core {load.LOAD_CORE}, -c{args.connections} {args.duration:g} s after "
          f"{args.warmup:g} s of warm-up; load average {os.getloadavg()[0]:.2f}\n")
    with tempfile.TemporaryDirectory(prefix="wexec-bench-caps-") as tmp_name:
        tmp = Path(tmp_name)
        bench = load.Bench(args.duration, args.warmup, args.connections, tmp)
        direct, composed, upstream_scripts = tmp / "direct", tmp / "composed", tmp / "proxy"
        for folder, files in ((direct, {"hello.ts": HELLO}),
                              (composed, {"hello.ts": COMPOSED, "target.ts": HELLO})):
            folder.mkdir()
            for name, text in files.items():
                (folder / name).write_text(text)
        rps: dict[str, float] = {}
        try:
            for label, folder in (("direct", direct), ("composed", composed)):
                port = load.free_port()
                rps[label] = bench.measure(wexec_argv(folder, port, server), load.ROOT,
                                           f"{label} (wexec worker)", port=port).rps
            up_port = load.free_port()
            up_url = f"http://{load.HOST}:{up_port}/hello"
            up_argv = load._py(str(load.APPS / "serve_bare.py"), server, str(up_port))
            with load.running(up_argv, load.ROOT, tmp / "upstream.log", load.LOAD_CORE,
                              load.BARE_ENV, up_port):
                for client in ("httpx", "aiohttp"):
                    port = load.free_port()
                    proxy_argv = load._py(str(load.APPS / "proxy.py"), server, str(port), up_url,
                                          client)
                    label = "proxy-bare" if client == "httpx" else "proxy-bare-aiohttp"
                    rps[label] = bench.measure(proxy_argv, load.ROOT,
                                               f"{label} (starlette+{client})", port=port).rps
                upstream_scripts.mkdir()
                (upstream_scripts / "hello.ts").write_text(
                    f"// @mode worker\nreturn fetch('{up_url}');\n")
                port = load.free_port()
                env = {"WEXEC_FETCH_ALLOW_HOSTS": f"{load.HOST}:{up_port}"}
                rps["proxy-worker"] = bench.measure(wexec_argv(upstream_scripts, port, server),
                                                    load.ROOT, "proxy-worker (wexec fetch)",
                                                    env=env, port=port).rps
        except load.Skip as exc:
            print(f"\n{exc}", file=sys.stderr)
            return 1
    cost = rps["direct"] / rps["composed"]
    share = rps["proxy-worker"] / rps["proxy-bare"]
    print()
    print(f"{'figure':44} {'measured':>9} {'target':>8}  met")
    print(f"{'composed fetch(/target) cost vs direct hello':44} {cost:>8.2f}x {'<= 1.5x':>8}  "
          f"{load._ok(cost <= TARGET_COMPOSED)}")
    print(f"{'worker fetch proxy req/s vs starlette+httpx':44} {share:>8.2f}x {'>= 0.5x':>8}  "
          f"{load._ok(share >= TARGET_PROXY)}")
    strict = rps["proxy-worker"] / rps["proxy-bare-aiohttp"]
    print(f"{'worker fetch proxy req/s vs starlette+aiohttp':44} {strict:>8.2f}x {'-':>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
