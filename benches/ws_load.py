"""WebSocket benchmarks: echo round trips, a fan-out and idle connections, wexec against a bare
Starlette app (and the echo against Cloudflare's workerd).

    python benches/ws_load.py [--duration 5 | --quick] [--servers uvicorn,granian,hypercorn-uvloop]
                              [--idle 5000] [--no-workerd | --no-install]

Both apps answer on /ws: a text message comes back as it was, and "go" is sent on to every open
socket (wexec: a worker script with `ws.broadcast`; bare: a loop over its sockets). Each server
first gets a second of unmeasured echo (wexec builds its management API and starts the script's
worker then). Then, one after the other, each once the server is quiet again:
- the memory the server's processes grow by while ``--idle`` connections do nothing, per
  connection (their PSS, before and after);
- echo round trips per second over 64 connections, each sending its next message once the last
  came back, and the server's CPU time per round trip (steadier than the rate where other work
  shares the machine);
- the time one "go" takes to reach all of 1,000 connected clients (median of several).
workerd (npm's `workerd`, installed into the bench cache on first use) serves the same echo
from a Worker; it has no fan-out row (a Worker sends only on sockets its own request accepted).

The server is pinned to core 0 and the client (Python `websockets`) to core 1; the client is the
ceiling of the echo row on a fast server, so the ratio is what to read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benches.http_load import (
    APPS,
    BARE_ENV,
    HELLO,
    HOST,
    LOAD_CORE,
    ROOT,
    SERVER_CORE,
    SERVERS,
    Skip,
    free_port,
    running,
    workerd_binary,
)

SCRIPT = """// @mode worker
// @websocket
ws.open = (socket) => socket.subscribe('all');
ws.message = (socket, data) => {
  if (data === 'go') ws.broadcast('all', 'tick');
  else socket.send(data);
};
module.exports = () => ({ sockets: ws.connections().length });
"""

TARGET_ECHO = 0.6
TARGET_FANOUT = 2.0
TARGET_IDLE_KIB = 20.0
ECHO_CONNECTIONS = 64
FANOUT_CLIENTS = 1000
IDLE_CONNECTIONS = 5000
WARMUP_S = 1.0
OPEN_AT_ONCE = 100
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
"""Handshakes in flight at once while a row opens its connections."""


@dataclass
class Row:
    server: str
    app: str
    echo: float  # round trips per second
    cpu_us: float = 0.0  # the server's CPU time per round trip
    fanout_ms: float | None = None
    idle_kib: float | None = None  # growth per idle connection


async def echo(port: int, seconds: float, leader: int | None = None) -> tuple[float, float]:
    """Round trips per second over ``ECHO_CONNECTIONS`` connections (opened first, unmeasured),
    and the server's CPU time per round trip in µs (with ``leader``, its process)."""
    counts = [0] * ECHO_CONNECTIONS

    conns = await open_many(port, ECHO_CONNECTIONS)

    async def one(i: int) -> None:
        conn = conns[i]
        while time.monotonic() < stop:
            await conn.send("ping")
            await conn.recv()
            counts[i] += 1

    try:
        used = group_cpu_s(leader) if leader is not None else 0.0
        t0 = time.monotonic()
        stop = t0 + seconds
        await asyncio.gather(*(one(i) for i in range(ECHO_CONNECTIONS)))
        elapsed, trips = time.monotonic() - t0, sum(counts)
        used = group_cpu_s(leader) - used if leader is not None else 0.0
        return trips / elapsed, used / max(trips, 1) * 1e6
    finally:
        await close_all(conns)


async def open_many(port: int, count: int) -> list[ClientConnection]:
    """``count`` connections, opened ``OPEN_AT_ONCE`` at a time."""
    conns: list[ClientConnection] = []
    try:
        for start in range(0, count, OPEN_AT_ONCE):
            conns += await asyncio.gather(*(
                connect(f"ws://{HOST}:{port}/ws", open_timeout=60, ping_interval=None)
                for _ in range(start, min(start + OPEN_AT_ONCE, count))
            ))
    except BaseException:
        await close_all(conns)
        raise
    return conns


async def close_all(conns: list[ClientConnection]) -> None:
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


async def fanout(port: int, leader: int, rounds: int) -> float:
    """Median ms from sending "go" until all ``FANOUT_CLIENTS`` clients have their "tick"."""
    conns = await open_many(port, FANOUT_CLIENTS)
    try:
        await quiet(leader)  # wexec runs each connection's open event after its handshake
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            await conns[0].send("go")
            await asyncio.gather(*(c.recv() for c in conns))
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)
    finally:
        await close_all(conns)


def _session(leader: int) -> Iterator[tuple[Path, list[str]]]:
    """The processes of ``leader``'s session (the server's: wexec's supervised server process
    has a process group of its own), each with the fields of its stat after the name."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue  # a process that ended meanwhile
        if int(fields[3]) == leader:  # state ppid pgrp session
            yield entry, fields


def group_cpu_s(leader: int) -> float:
    """CPU seconds the server's processes have used (user and system, all threads)."""
    return sum(int(f[11]) + int(f[12]) for _, f in _session(leader)) / CLOCK_TICKS


async def quiet(leader: int) -> None:
    """Until the server is done with what the client already sent (wexec runs open and close
    events after the handshakes the client waits for): a tenth of a second using under a
    tenth of a core, or ten seconds."""
    last = group_cpu_s(leader)
    for _ in range(100):
        await asyncio.sleep(0.1)
        now = group_cpu_s(leader)
        if now - last < 0.01:
            return
        last = now


def group_memory_kib(leader: int) -> float:
    """What the server's processes hold: their PSS summed, so pages they share count once (RSS
    where the kernel has no smaps_rollup)."""
    total = 0.0
    for entry, _ in _session(leader):
        try:
            try:
                lines, key = (entry / "smaps_rollup").read_text().splitlines(), "Pss:"
            except OSError:
                lines, key = (entry / "status").read_text().splitlines(), "VmRSS:"
            value = next(line.split()[1] for line in lines if line.startswith(key))
            total += float(value)
        except (OSError, StopIteration, ValueError, IndexError):
            continue  # a process that ended meanwhile
    return total


async def settle(leader: int) -> float:
    """The group's memory once it stops moving (the server answers the last opens first)."""
    last = group_memory_kib(leader)
    for _ in range(20):
        await asyncio.sleep(0.5)
        now = group_memory_kib(leader)
        if abs(now - last) < 64:
            return now
        last = now
    return last


async def idle(port: int, leader: int, count: int) -> float:
    """KiB the server grows by per connection while ``count`` connections sit idle."""
    await quiet(leader)
    before = await settle(leader)
    conns = await open_many(port, count)
    try:
        await quiet(leader)
        after = await settle(leader)
    finally:
        await close_all(conns)
        await quiet(leader)
    return (after - before) / count


def warm_up(port: int, seconds: float) -> None:
    """What a server does once after it starts is not measured: wexec builds its management API
    on a thread after start-up (an API request waits for it; the bare app answers 404 at once)
    and starts the script's worker instance on its first connection."""
    try:
        urllib.request.urlopen(f"http://{HOST}:{port}/api/v1/exec/health", timeout=60).close()
    except urllib.error.HTTPError:
        pass
    asyncio.run(echo(port, seconds))


def measure(server: str, app: str, port: int, leader: int, seconds: float, rounds: int | None,
            idle_count: int) -> Row:
    """One row; ``rounds`` None: the echo only."""
    warm_up(port, WARMUP_S)
    row = Row(server, app, 0.0)
    if idle_count and rounds is not None:
        row.idle_kib = asyncio.run(idle(port, leader, idle_count))
    row.echo, row.cpu_us = asyncio.run(echo(port, seconds, leader))
    if rounds is not None:
        row.fanout_ms = asyncio.run(fanout(port, leader, rounds))
    return row


def run_workerd(tmp: Path, seconds: float, install: bool) -> Row:
    exe = workerd_binary(install)
    port = free_port()
    argv = [str(exe), "serve", "ws.capnp", "--socket-addr", f"http={HOST}:{port}"]
    with running(argv, APPS / "workerd", tmp / "workerd.log", SERVER_CORE, port=port) as proc:
        return measure("workerd", "workerd", port, proc.pid, seconds, None, 0)


def more_files() -> None:
    """Open files enough for the idle row, for this client and the servers it starts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * IDLE_CONNECTIONS + 1024
    if soft != resource.RLIM_INFINITY and soft < want:
        cap = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (cap, hard))


def _ok(good: bool) -> str:
    return "ok" if good else "MISSED"


def report(rows: list[Row], notes: list[str]) -> None:
    print(f"\n{'server':18} {'app':8} {'echo/s':>8} {'cpu µs/rt':>10} {'fan-out ms':>11} "
          f"{'KiB/conn':>9} {'echo/bare':>10} {'cpu/bare':>9} {'fan/bare':>9} {'+KiB/conn':>10} "
          f"{'echo/workerd':>13}  targets")
    bare = {r.server: r for r in rows if r.app == "bare"}
    workerd = next((r for r in rows if r.app == "workerd"), None)
    for r in rows:
        cells = [f"{r.server:18} {r.app:8} {r.echo:8.0f} {r.cpu_us:10.1f}",
                 f"{r.fanout_ms:11.1f}" if r.fanout_ms is not None else f"{'-':>11}",
                 f"{r.idle_kib:9.1f}" if r.idle_kib is not None else f"{'-':>9}"]
        targets = []
        base = bare.get(r.server)
        if r.app == "wexec" and base is not None:
            echo_ratio = r.echo / base.echo
            cells.append(f"{echo_ratio:10.2f}")
            cells.append(f"{r.cpu_us / base.cpu_us:9.2f}" if base.cpu_us else f"{'-':>9}")
            targets.append(f"echo ≥ {TARGET_ECHO}× bare {_ok(echo_ratio >= TARGET_ECHO)}")
            if r.fanout_ms is not None and base.fanout_ms:
                fan_ratio = r.fanout_ms / base.fanout_ms
                cells.append(f"{fan_ratio:9.2f}")
                targets.append(f"fan-out ≤ {TARGET_FANOUT:.0f}× bare "
                               f"{_ok(fan_ratio <= TARGET_FANOUT)}")
            else:
                cells.append(f"{'-':>9}")
            if r.idle_kib is not None and base.idle_kib is not None:
                extra = r.idle_kib - base.idle_kib
                cells.append(f"{extra:10.1f}")
                targets.append(f"idle ≤ +{TARGET_IDLE_KIB:.0f} KiB {_ok(extra <= TARGET_IDLE_KIB)}")
            else:
                cells.append(f"{'-':>10}")
            if workerd is not None:
                vs = r.echo / workerd.echo
                cells.append(f"{vs:13.2f}")
                targets.append(f"echo ≥ workerd {_ok(vs >= 1.0)}")
            else:
                cells.append(f"{'-':>13}")
        print(" ".join(cells) + ("  " + ", ".join(targets) if targets else ""))
    for note in notes:
        print("note:", note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of echo per row")
    parser.add_argument("--quick", action="store_true", help="2 s of echo, 3 fan-out rounds")
    parser.add_argument("--servers", default="uvicorn,granian,hypercorn-uvloop")
    parser.add_argument("--idle", type=int, default=IDLE_CONNECTIONS,
                        help="idle connections of the memory row (0: no memory row)")
    parser.add_argument("--no-workerd", action="store_true", help="no workerd row")
    parser.add_argument("--no-install", action="store_true", help="do not npm-install workerd")
    args = parser.parse_args()
    seconds, rounds = (2.0, 3) if args.quick else (args.duration, 9)
    wanted = args.servers.split(",")
    more_files()
    os.sched_setaffinity(0, {int(LOAD_CORE)})  # the client; servers are pinned by `running`
    rows: list[Row] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        scripts, data = Path(tmp) / "scripts", Path(tmp) / "data"
        scripts.mkdir()
        (scripts / "hello.ts").write_text(f"// @mode worker\n{HELLO}\n")
        (scripts / "ws.js").write_text(SCRIPT)
        for cfg in (c for c in SERVERS if c.name in wanted):
            for app in ("bare", "wexec"):
                port = free_port()
                if app == "bare":
                    argv, cwd, env = cfg.bare(port, 1), APPS, BARE_ENV
                else:
                    argv, cwd, env = cfg.wexec(scripts, data, port, 1), ROOT, None
                print(f"{cfg.name} {app} ...", flush=True)
                try:
                    with running(argv, cwd, Path(tmp) / f"{cfg.name}-{app}.log", SERVER_CORE,
                                 env=env, port=port) as proc:
                        rows.append(measure(cfg.name, app, port, proc.pid, seconds, rounds,
                                            args.idle))
                except (Skip, OSError) as exc:
                    notes.append(f"{cfg.name} {app}: {exc}")
        if not args.no_workerd:
            print("workerd ...", flush=True)
            try:
                rows.append(run_workerd(Path(tmp), seconds, not args.no_install))
            except (Skip, OSError, subprocess.SubprocessError) as exc:
                notes.append(f"workerd row skipped: {exc}")
    report(rows, notes)


if __name__ == "__main__":
    main()
