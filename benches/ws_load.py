"""WebSocket benchmarks: echo round trips and a fan-out, wexec against a bare Starlette app.

    python benches/ws_load.py [--duration 5 | --quick] [--servers uvicorn,granian,hypercorn-uvloop]

Both apps answer on /ws: a text message comes back as it was, and "go" is sent on to every open
socket (wexec: a worker script with `ws.broadcast`; bare: a loop over its sockets). Rows:
echo round trips per second over 64 connections, each sending its next message once the last
came back (after a second of it unmeasured); and the time one "go" takes to reach all of 1,000 connected clients (median of
several). The server is pinned to core 0 and the client (Python `websockets`) to core 1; the
client is the ceiling of the echo row on a fast server, so the ratio is what to read.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from websockets.asyncio.client import connect

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
ECHO_CONNECTIONS = 64
FANOUT_CLIENTS = 1000
WARMUP_S = 1.0


async def echo(port: int, seconds: float) -> float:
    """Round trips per second over ``ECHO_CONNECTIONS`` connections."""
    stop = time.monotonic() + seconds
    counts = [0] * ECHO_CONNECTIONS

    async def one(i: int) -> None:
        async with connect(f"ws://{HOST}:{port}/ws", open_timeout=30) as conn:
            while time.monotonic() < stop:
                await conn.send("ping")
                await conn.recv()
                counts[i] += 1

    t0 = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(ECHO_CONNECTIONS)))
    return sum(counts) / (time.monotonic() - t0)


async def fanout(port: int, rounds: int) -> float:
    """Median ms from sending "go" until all ``FANOUT_CLIENTS`` clients have their "tick"."""
    conns = []
    for start in range(0, FANOUT_CLIENTS, 100):
        conns += await asyncio.gather(*(connect(f"ws://{HOST}:{port}/ws", open_timeout=60)
                                        for _ in range(start, min(start + 100, FANOUT_CLIENTS))))
    try:
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            await conns[0].send("go")
            await asyncio.gather(*(c.recv() for c in conns))
            times.append((time.perf_counter() - t0) * 1000)
        return statistics.median(times)
    finally:
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)


def warm_up(port: int, seconds: float) -> None:
    """What a server does once after it starts is not measured: wexec builds its management API
    on a thread after start-up (an API request waits for it; the bare app answers 404 at once)
    and starts the script's worker instance on its first connection."""
    try:
        urllib.request.urlopen(f"http://{HOST}:{port}/api/v1/exec/health", timeout=60).close()
    except urllib.error.HTTPError:
        pass
    asyncio.run(echo(port, seconds))


def measure(port: int, seconds: float, rounds: int) -> tuple[float, float]:
    os.sched_setaffinity(0, {int(LOAD_CORE)})
    warm_up(port, WARMUP_S)
    rate = asyncio.run(echo(port, seconds))
    return rate, asyncio.run(fanout(port, rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of echo per row")
    parser.add_argument("--quick", action="store_true", help="2 s of echo, 3 fan-out rounds")
    parser.add_argument("--servers", default="uvicorn,granian,hypercorn-uvloop")
    args = parser.parse_args()
    seconds, rounds = (2.0, 3) if args.quick else (args.duration, 9)
    wanted = args.servers.split(",")
    rows: list[tuple[str, str, float, float]] = []
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
                try:
                    with running(argv, cwd, Path(tmp) / f"{cfg.name}-{app}.log", SERVER_CORE,
                                 env=env, port=port):
                        rows.append((cfg.name, app, *measure(port, seconds, rounds)))
                except Skip as exc:
                    notes.append(f"{cfg.name} {app}: {exc}")
    print(f"{'server':18} {'app':6} {'echo/s':>9} {'fan-out ms':>11} {'echo/bare':>10} "
          f"{'fan-out/bare':>13}  targets")
    bare = {server: (rate, ms) for server, app, rate, ms in rows if app == "bare"}
    for server, app, rate, ms in rows:
        line = f"{server:18} {app:6} {rate:9.0f} {ms:11.1f}"
        base = bare.get(server)
        if app == "wexec" and base:
            echo_ratio, fan_ratio = rate / base[0], ms / base[1]
            line += (f" {echo_ratio:10.2f} {fan_ratio:13.2f}  echo ≥ {TARGET_ECHO}× bare "
                     f"{'ok' if echo_ratio >= TARGET_ECHO else 'MISSED'}, fan-out ≤ "
                     f"{TARGET_FANOUT:.0f}× bare {'ok' if fan_ratio <= TARGET_FANOUT else 'MISSED'}")
        print(line)
    for note in notes:
        print("note:", note)


if __name__ == "__main__":
    main()
