"""HTTP load benchmarks: what a hello endpoint costs behind a real server, the figures of issue 3.

    python benches/http_load.py [--duration 10 | --quick] [--servers uvicorn,granian] [--apps bare,worker]
    python benches/http_load.py --workers-scaling [--server uvicorn]

Each row is one server configuration serving one app: a bare Starlette hello (the baseline),
wexec serving a hello script in worker and in serverless mode, and Cloudflare's workerd serving a
JS hello (the stretch target). The server is pinned to core 0 and `wrk` to core 1, so the two
never share a core; every run is warmed up first and its server process group killed afterwards.
The ratios compare apps measured in the same run on the same machine, which is what the targets
are about: absolute requests/s move with the machine, the ratios much less.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"
HOST = "127.0.0.1"  # all traffic stays on the loopback
PATH = "/hello"
SERVER_CORE, LOAD_CORE = "0", "1"
BARE_ENV = {"PYTHONPATH": os.pathsep.join([str(APPS), str(ROOT)])}
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wexec" / "bench"

HELLO = "return { message: 'hello' };"
"""The wexec hello, identical in both modes but for its `@mode` line; same JSON as apps/bare.py."""
BUSY = ("let x = 0;\nfor (let i = 0; i < 24000; i++) x = (x * 31 + i) % 1000003;\n"
        "return { message: 'hello', x };")
"""A worker hello that computes for about 1.5 ms first: busy enough that the server, not `wrk` sharing
its second core, is what a scaling run measures (at 0.4 ms, wrk's share of that core already
cost the second process 10-20%)."""

TARGET_WORKER_RPS = 0.60
TARGET_SERVERLESS_RPS = 0.35
TARGET_WORKER_P99 = 2.0
TARGET_SCALING = 1.7

class Skip(Exception):
    """A row that cannot be measured here; its message goes into the notes under the table."""


# -- server configurations ------------------------------------------------------------------


@dataclass(frozen=True)
class ServerConfig:
    """One way of serving an ASGI app — `wexec serve --server SERVER --loop LOOP` — applied alike
    to the bare app and to wexec."""

    name: str
    detail: str
    server: str
    loop: str = "uvloop"

    def bare(self, port: int, workers: int) -> list[str]:
        """The bare app through `runtime.server.serve`: the very options `wexec serve` uses."""
        return _py(str(APPS / "serve_bare.py"), self.server, str(port), str(workers), self.loop)

    def wexec(self, scripts: Path, data: Path, port: int, workers: int) -> list[str]:
        """`wexec serve` from this checkout (the console script's own entry point, runtime.cli)."""
        return _py("-m", "runtime.cli", "serve", "--scripts", str(scripts), "--data", str(data),
                   "--server", self.server, "--loop", self.loop, "--host", HOST, "--port", str(port),
                   "--workers", str(workers))


def _py(*args: str) -> list[str]:
    return [sys.executable, *args]


SERVERS = [
    ServerConfig("uvicorn", "httptools + uvloop", "uvicorn"),
    ServerConfig("hypercorn-asyncio", "h11, asyncio loop", "hypercorn", loop="asyncio"),
    ServerConfig("hypercorn-uvloop", "h11, uvloop", "hypercorn"),
    ServerConfig("granian", "Rust HTTP, uvloop", "granian"),
]


# -- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


API_HEALTH = "/api/v1/exec/health"
"""A wexec server builds its management API on a thread once it serves scripts (about a second
of CPU): its first answer comes when that is done, and a bare app answers it 404 at once."""


def get_status(port: int, path: str = PATH, timeout_s: float = 2) -> tuple[int, bytes]:
    """One GET of ``path``: (status, body)."""
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=timeout_s) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(proc: subprocess.Popen[bytes], port: int, timeout_s: float) -> None:
    """Poll the hello path until it answers 200, then wait for a wexec server's management API
    (``API_HEALTH``): wrk must not measure a server still starting."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Skip(f"server exited with status {proc.returncode} before answering")
        try:
            status, body = get_status(port)
            if status == 200:
                get_status(port, API_HEALTH, max(1.0, deadline - time.monotonic()))
                return
            last = f"HTTP {status}: {body[:200].decode(errors='replace')}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise Skip(f"no 200 from {PATH} within {timeout_s:.0f} s ({last})")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End the server's whole process group (workers included), politely, then for sure."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers: worker processes outliving their parent
    except ProcessLookupError:
        pass
    proc.wait()


@contextmanager
def running(argv: list[str], cwd: Path, log: Path, pin: str | None, env: dict[str, str] | None = None,
            port: int = 0, ready_s: float = 60) -> Iterator[subprocess.Popen[bytes]]:
    """A server in its own process group, ready on ``port``; stopped on exit, whatever happened.
    Yields its process, the leader of that group."""
    cmd = (["taskset", "-c", pin] if pin else []) + argv
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, start_new_session=True)
    try:
        try:
            wait_ready(proc, port, ready_s)
        except Skip as exc:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            raise Skip(f"{exc}; log: {' | '.join(tail) or '(empty)'}") from None
        yield proc
    finally:
        stop(proc)


# -- wrk ------------------------------------------------------------------------------------


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: str = ""


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def to_ms(text: str) -> float:
    """wrk prints durations as 812.00us, 3.10ms, 1.02s or 1.50m."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"unreadable wrk duration {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(out: str) -> Result:
    """Requests/s, the p50 and p99 of `--latency`'s distribution, and any errors wrk counted."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.MULTILINE)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    if not (rps and p50 and p99):
        raise ValueError(f"unexpected wrk output:\n{out}")
    errors = []
    sock = re.search(r"Socket errors: (.*)", out)
    if sock:
        errors.append(f"socket errors: {sock.group(1).strip()}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors.append(f"{non2xx.group(1)} non-2xx answers")
    return Result(float(rps.group(1)), to_ms(p50.group(1)), to_ms(p99.group(1)), "; ".join(errors))


def wrk(port: int, seconds: float, connections: int) -> Result:
    """One wrk run on the load core: one thread, ``connections`` keep-alive connections."""
    cmd = ["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           "--latency", f"http://{HOST}:{port}{PATH}"]
    out = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise Skip(f"wrk failed ({out.returncode}): {out.stderr.strip()[:200]}")
    return parse_wrk(out.stdout)


@dataclass
class Bench:
    """Run-wide settings and the scratch directory every run logs into."""

    duration: float
    warmup: float
    connections: int
    tmp: Path
    notes: list[str] = field(default_factory=list)

    def measure(self, argv: list[str], cwd: Path, label: str, pin: str | None = SERVER_CORE,
                env: dict[str, str] | None = None, port: int = 0, ready_s: float = 60) -> Result:
        """Start, wait, warm up, measure, stop. ``argv`` must already carry ``port``."""
        log = self.tmp / (re.sub(r"\W+", "-", label) + ".log")
        print(f"  {label:36} ", end="", flush=True)
        try:
            with running(argv, cwd, log, pin, env, port, ready_s):
                if self.warmup > 0:
                    wrk(port, self.warmup, self.connections)
                result = wrk(port, self.duration, self.connections)
        except Skip:
            print("skipped")
            raise
        print(f"{result.rps:>9.0f} req/s  p99 {result.p99_ms:.2f} ms {result.errors}")
        return result


# -- the main table -------------------------------------------------------------------------


@dataclass
class Row:
    server: str
    app: str
    result: Result | None


def workerd_binary(install: bool) -> Path:
    """workerd from the npm cache dir, installed there on first use when npm can."""
    exe = CACHE / "node_modules" / ".bin" / "workerd"
    if not exe.exists() and install:
        if shutil.which("npm") is None:
            raise Skip("workerd: npm is not installed")
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"  installing workerd with npm into {CACHE} (npm's output follows) ...", flush=True)
        try:
            npm = ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(CACHE), "workerd"]
            out = subprocess.run(npm, check=False, timeout=600)
        except subprocess.TimeoutExpired:
            raise Skip("workerd: npm install timed out after 10 minutes") from None
        if out.returncode != 0:
            raise Skip(f"workerd: npm install failed with status {out.returncode} (npm's output "
                       "is above)")
    if not exe.exists():
        raise Skip(f"workerd: not found at {exe}")
    check = subprocess.run([str(exe), "--version"], check=False, capture_output=True, text=True,
                           timeout=30)
    if check.returncode != 0:
        raise Skip(f"workerd: does not run here: {(check.stderr or check.stdout).strip()[:200]}")
    return exe


def prepare_wexec(tmp: Path) -> tuple[Path, Path]:
    """Hello scripts for both modes, and the guest built before any timing starts."""
    scripts, data = tmp / "scripts", tmp / "data"
    for mode in ("worker", "serverless"):
        (scripts / mode).mkdir(parents=True)
        (scripts / mode / "hello.ts").write_text(f"// @mode {mode}\n{HELLO}\n")
    (scripts / "busy").mkdir(parents=True)
    (scripts / "busy" / "hello.ts").write_text(f"// @mode worker\n{BUSY}\n")
    out = subprocess.run(_py("-m", "runtime.cli", "build"), cwd=ROOT, check=False,
                         capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise Skip(f"`wexec build` failed: {(out.stderr or out.stdout).strip().splitlines()[-1:]}")
    return scripts, data


def run_table(args: argparse.Namespace, bench: Bench) -> list[Row]:
    apps = set(args.apps.split(","))
    servers = [s for s in SERVERS if s.name in args.servers.split(",")] if args.servers else SERVERS
    rows: list[Row] = []
    wexec_dirs: tuple[Path, Path] | None = None
    if apps & {"worker", "serverless"}:
        print("building the wexec guest (cached after the first time) ...", flush=True)
        try:
            wexec_dirs = prepare_wexec(bench.tmp)
        except Skip as exc:
            bench.notes.append(f"wexec rows skipped: {exc}")

    for cfg in servers:
        print(f"{cfg.name} ({cfg.detail})")
        if cfg.name == "granian" and find_spec("granian") is None:
            bench.notes.append("granian: not installed (pip install granian)")
            continue
        for app in ("bare", "worker", "serverless"):
            if app not in apps:
                continue
            if app == "bare":
                port = free_port()
                argv, cwd = cfg.bare(port, 1), APPS
                env = BARE_ENV
            else:
                if wexec_dirs is None:
                    continue
                scripts, data = wexec_dirs
                port = free_port()
                argv, cwd, env = cfg.wexec(scripts / app, data / app, port, 1), ROOT, None
            try:
                res = bench.measure(argv, cwd, f"{cfg.name} {app}", env=env, port=port)
            except Skip as exc:
                bench.notes.append(f"{cfg.name} × {app}: skipped, {exc}")
                res = None
            rows.append(Row(cfg.name, app, res))

    if "workerd" in apps:
        print("workerd (Cloudflare, JS hello)")
        try:
            exe = workerd_binary(install=not args.no_install)
            port = free_port()
            argv = [str(exe), "serve", "config.capnp", "--socket-addr", f"http={HOST}:{port}"]
            rows.append(Row("workerd", "workerd", bench.measure(argv, APPS / "workerd", "workerd", port=port)))
        except Skip as exc:
            bench.notes.append(f"workerd row skipped: {exc}")
    return rows


def _ok(good: bool) -> str:
    return "OK" if good else "MISSED"


def print_table(rows: list[Row], bench: Bench) -> None:
    bare = {r.server: r.result for r in rows if r.app == "bare" and r.result}
    workerd = next((r.result for r in rows if r.app == "workerd" and r.result), None)
    head = (f"{'server':18} {'app':11} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'rps/bare':>9} "
            f"{'p99/bare':>9} {'rps/workerd':>12}  targets")
    print("\n" + head)
    print("-" * len(head))
    for r in rows:
        res, base = r.result, bare.get(r.server)
        if res is None:
            print(f"{r.server:18} {r.app:11} {'skipped (see notes)':>9}")
            continue
        rps_ratio = res.rps / base.rps if base else None
        p99_ratio = res.p99_ms / base.p99_ms if base else None
        vs_workerd = res.rps / workerd.rps if workerd and r.app != "workerd" else None
        targets = []
        if r.app == "worker" and rps_ratio is not None and p99_ratio is not None:
            targets.append(f"rps ≥ {TARGET_WORKER_RPS:.2f}× bare {_ok(rps_ratio >= TARGET_WORKER_RPS)}")
            targets.append(f"p99 ≤ {TARGET_WORKER_P99:.0f}× bare {_ok(p99_ratio <= TARGET_WORKER_P99)}")
            if vs_workerd is not None:
                targets.append(f"stretch ≥ 1.00× workerd {_ok(vs_workerd >= 1.0)}")
        elif r.app == "serverless" and rps_ratio is not None:
            targets.append(f"rps ≥ {TARGET_SERVERLESS_RPS:.2f}× bare {_ok(rps_ratio >= TARGET_SERVERLESS_RPS)}")
        if res.errors:
            targets.append(f"wrk: {res.errors}")
        print(f"{r.server:18} {r.app:11} {res.rps:>9.0f} {res.p50_ms:>8.2f} {res.p99_ms:>8.2f} "
              f"{_ratio(rps_ratio):>9} {_ratio(p99_ratio):>9} {_ratio(vs_workerd):>12}  {'; '.join(targets)}")


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}×"


# -- workers scaling ------------------------------------------------------------------------


def run_scaling(args: argparse.Namespace, bench: Bench) -> None:
    """wexec worker scripts with 1 then 2 server processes; the bare app alike, as the ceiling.

    The server is not pinned (two processes need both cores); wrk stays pinned to core 1, so on a
    2-core machine it takes part of the core the second server process wants. The bare app's
    scaling, measured the same way, shows how much of the ideal 2× this placement leaves: when a
    request costs the server little, wrk's share of core 1 decides the ratio. The `busy` row, a
    worker script that computes for about 1.5 ms, keeps wrk's share small, so its ratio is the
    server's own and carries the target.
    """
    cfg = next(s for s in SERVERS if s.server == args.server and s.loop == "uvloop")  # serve's default
    apps = ["bare", "worker", "busy"]
    try:
        scripts, data = prepare_wexec(bench.tmp)
    except Skip as exc:
        bench.notes.append(f"wexec rows skipped: {exc}")
        apps = ["bare"]
    print(f"workers scaling on {cfg.name} ({cfg.detail}); server unpinned, wrk on core {LOAD_CORE}")
    results: dict[tuple[str, int], Result] = {}
    for app in apps:
        for n in (1, 2):
            port = free_port()
            if app == "bare":
                argv, cwd, env = cfg.bare(port, n), APPS, BARE_ENV
            else:
                argv, cwd, env = cfg.wexec(scripts / app, data / f"{app}{n}", port, n), ROOT, None
            try:
                results[app, n] = bench.measure(argv, cwd, f"{app} --workers {n}", pin=None, env=env, port=port)
            except Skip as exc:
                bench.notes.append(f"{app} --workers {n}: skipped, {exc}")
    head = f"{'app':8} {'workers':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'2 vs 1':>8}  target"
    print("\n" + head)
    print("-" * len(head))
    for app in apps:
        for n in (1, 2):
            res = results.get((app, n))
            if res is None:
                print(f"{app:8} {n:>7} {'skipped':>9}")
                continue
            one = results.get((app, 1))
            scale = res.rps / one.rps if n == 2 and one else None
            target = ""
            if scale is not None:
                target = {
                    "busy": f"≥ {TARGET_SCALING}× {_ok(scale >= TARGET_SCALING)}",
                    "worker": "(a hello: bound by this placement, as bare is)",
                }.get(app, "(reference: what this placement allows)")
            print(f"{app:8} {n:>7} {res.rps:>9.0f} {res.p50_ms:>8.2f} {res.p99_ms:>8.2f} {_ratio(scale):>8}  {target}")


def default_server() -> str:
    """What `wexec serve` runs without --server, asked of the checkout's settings."""
    code = "from runtime.config import Settings; print(Settings.model_fields['server'].default)"
    out = subprocess.run(_py("-c", code), cwd=ROOT, check=False, capture_output=True, text=True)
    return out.stdout.strip() or "uvicorn"


# -- entry point ----------------------------------------------------------------------------


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10, help="seconds per measured run (default 10)")
    ap.add_argument("--quick", action="store_true", help="3 s runs, for a smoke test")
    ap.add_argument("--warmup", type=float, default=2, help="seconds of unmeasured load first (default 2)")
    ap.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    ap.add_argument("--servers", default="", help="comma list of: " + ",".join(s.name for s in SERVERS))
    ap.add_argument("--apps", default="bare,worker,serverless,workerd", help="comma list (default: all)")
    ap.add_argument("--no-install", action="store_true", help="do not npm-install workerd")
    ap.add_argument("--workers-scaling", action="store_true", help="wexec --workers 1 vs 2 instead")
    ap.add_argument("--server", choices=list(dict.fromkeys(s.server for s in SERVERS)),
                    help="server for --workers-scaling (default: wexec serve's own default)")
    args = ap.parse_args()
    if args.quick:
        args.duration = 3
    if args.server is None:
        args.server = default_server()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(f"benches/http_load.py needs `{tool}` on PATH", file=sys.stderr)
            return 2
    if (os.cpu_count() or 1) < 2:
        print("benches/http_load.py needs two cores: one for the server, one for wrk", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)

    version = subprocess.run(["wrk", "--version"], check=False, capture_output=True, text=True)
    wrk_version = version.stdout.split("\n")[0].split(" [")[0]
    print(f"wexec HTTP benchmarks  {datetime.datetime.now().isoformat(timespec='seconds')}  "
          f"{platform.node()}, {os.cpu_count()} cores, python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f} (other work on the machine skews every row)")
    print(f"method: server on core {SERVER_CORE}, `{wrk_version}` on core {LOAD_CORE}: "
          f"-t1 -c{args.connections} -d{args.duration:g}s --latency, after {args.warmup:g} s of warm-up")
    print(f"command: {' '.join(['python', 'benches/http_load.py', *sys.argv[1:]])}\n")
    with tempfile.TemporaryDirectory(prefix="wexec-bench-") as tmp:
        bench = Bench(args.duration, args.warmup, args.connections, Path(tmp))
        try:
            if args.workers_scaling:
                run_scaling(args, bench)
            else:
                print_table(run_table(args, bench), bench)
        except KeyboardInterrupt:
            print("\ninterrupted; servers stopped", file=sys.stderr)
            return 130
        except Skip as exc:
            print(f"\n{exc}", file=sys.stderr)
            return 1
        if bench.notes:
            print("\nnotes:")
            for note in bench.notes:
                print(f"  - {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
