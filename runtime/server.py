"""`wexec serve`: run the app under an ASGI server, in one or more processes.

Each server process builds its own app — and so its own sandbox — from `WEXEC_*` environment
variables, which `serve` exports from the resolved settings: one path for every server and for
any number of workers. granian is the default: of the three, which all pass the whole suite, it
was the fastest in benches/http_load.py (about twice uvicorn's requests/s on a bare app, and a much
lower p99 for serverless scripts). hypercorn stays supported for HTTP/2 and HTTP/3.

Hostile clients are bounded here, with what each server offers: a header-read timeout for idle
and slowloris connections, a keep-alive timeout, a connection limit per process sized to the
open-files limit (raised to its hard maximum), and a kernel backlog. And the server runs under a
small supervisor that starts it again if it dies unexpectedly, so a crash costs the requests of
one process, not the service.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import logging
import math
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from runtime.config import Settings
from runtime.observe.metrics import MULTIPROC_ENV, multiprocess_dir

APP_FACTORY = "runtime.app:create_app"
log = logging.getLogger("wexec")
FD_RESERVE = 256
"""Open files kept for what a process opens besides connections: scripts, logs, the sandbox."""
RESTART_DELAY_S = (0.1, 5.0)
"""Delay before restarting a crashed server, doubling per crash in a row up to the maximum."""


def export(settings: Settings) -> None:
    """Put every setting into the environment, where worker processes read them back."""
    for name, value in settings.model_dump(exclude_none=True).items():
        if isinstance(value, SecretStr):  # its str() is a mask
            value = value.get_secret_value()
        text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        os.environ[f"WEXEC_{name.upper()}"] = text


def serve(settings: Settings, app: str = APP_FACTORY) -> int:
    """Serve until interrupted; returns the exit code. `app` names an ASGI app factory: benches
    serve a bare app through exactly the same server configuration."""
    export(settings)
    if settings.metrics and not os.environ.get(MULTIPROC_ENV):
        # Every server process counts into this run's folder; any one's scrape adds them up.
        os.environ[MULTIPROC_ENV] = str(multiprocess_dir(settings.data_dir))
    if settings.scheduler == "batch":
        _batch_scheduling()
    connections = min(settings.max_connections, _raise_open_files_limit() - FD_RESERVE)
    if settings.restart_on_crash:
        if (problem := _cannot_listen(settings.host, settings.port)) is not None:
            print(f"wexec: cannot listen on {settings.host}:{settings.port}: {problem}",
                  file=sys.stderr, flush=True)
            return 1
        return supervise(lambda: _run(settings, app, connections))
    _run(settings, app, connections)
    return 0


def _run(settings: Settings, app: str, connections: int) -> None:
    header_read_s = math.ceil(settings.header_read_timeout_ms / 1000)
    keep_alive_s = math.ceil(settings.keep_alive_timeout_ms / 1000)
    if settings.server == "uvicorn":
        import uvicorn

        # uvicorn has no header-read timeout: a connection idle before its first request, or
        # trickling its headers, is bounded only by limit_concurrency (answered 503 past it).
        uvicorn.run(
            app, factory=True, host=settings.host, port=settings.port,
            workers=settings.workers, loop=settings.loop, http="httptools", lifespan="on",
            access_log=False, log_level="warning", ws="websockets-sansio", limit_concurrency=connections,
            ws_max_size=settings.ws_max_message_bytes + 1, ws_per_message_deflate=False,
            ws_ping_interval=settings.ws_ping_interval_ms / 1000 or None,
            backlog=settings.backlog, timeout_keep_alive=keep_alive_s,
        )
    elif settings.server == "granian":
        from granian import Granian
        from granian.constants import HTTPModes, Interfaces, Loops
        from granian.http import HTTP1Settings

        # HTTP/1 only: in auto mode granian first waits, with no time limit, for bytes telling
        # HTTP/1 from HTTP/2, so a client that sends nothing is never dropped. In HTTP/1 mode its
        # header-read timeout runs from the connection's start and between requests on it, so
        # it is also the keep-alive timeout. backpressure is its connection limit. Its
        # WebSockets have no ping keep-alive and no message-size setting of their own: wexec's
        # size check and idle timeout apply (hypercorn serves HTTP/2).
        Granian(
            app, factory=True, address=settings.host, port=settings.port,
            interface=Interfaces.ASGI, workers=settings.workers, loop=Loops(settings.loop),
            log_access=False, backlog=settings.backlog, backpressure=connections,
            http1_settings=HTTP1Settings(header_read_timeout=settings.header_read_timeout_ms),
            http=HTTPModes.http1, websockets=True, respawn_failed_workers=True,
        ).serve()
    else:
        from hypercorn.config import Config
        from hypercorn.run import run

        # hypercorn has no connection limit; its read timeout closes a connection that sends
        # nothing for that long, which bounds idle clients but not a slow trickle of bytes.
        config = Config()
        config.application_path = app + "()"
        config.bind = [f"{settings.host}:{settings.port}"]
        config.workers = 0 if settings.workers == 1 else settings.workers  # 0: this process
        config.worker_class = settings.loop
        config.accesslog = None
        config.backlog = settings.backlog
        config.keep_alive_timeout = keep_alive_s
        config.read_timeout = header_read_s
        config.websocket_max_message_size = settings.ws_max_message_bytes + 1
        config.websocket_ping_interval = settings.ws_ping_interval_ms / 1000 or None
        run(config)


def supervise(run: Callable[[], None]) -> int:
    """Run `run` in a child process, and run it again whenever it dies unexpectedly.

    SIGTERM and SIGINT stop the child and then the supervisor; SIGUSR2 (the management API's
    system/restart) stops the child gracefully and starts a new one at once. An app that has started says so
    with SIGUSR1 (to `WEXEC_SUPERVISOR_PID`); a server that exits by itself before any app did
    failed to start (a port in use, a script folder it cannot read) and would fail the same way
    again, so the supervisor stops too. Any other death (a crash, the OOM killer, granian giving
    up on a worker that crashed twice) is followed by a new child, after a delay that doubles
    while it keeps dying. Returns the last exit code.
    """
    stopping = False
    started = False
    restarting = False
    child = 0

    def app_started(_signum: int, _frame: object) -> None:
        nonlocal started
        started = True

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child:
            with contextlib.suppress(ProcessLookupError):  # it may have died just now
                os.kill(child, signum)

    def restart(_signum: int, _frame: object) -> None:
        nonlocal restarting
        restarting = True
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    os.environ["WEXEC_SUPERVISOR_PID"] = str(os.getpid())
    signal.signal(signal.SIGUSR1, app_started)
    signal.signal(signal.SIGUSR2, restart)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    delay = RESTART_DELAY_S[0]
    while True:
        since = time.monotonic()
        child = os.fork()
        if child == 0:
            code = 1
            try:
                code = _child(run)
            finally:  # the child ends here, whatever happened: never as a second supervisor
                os._exit(code)
        if stopping:  # a signal came between the fork and `child` being set
            os.kill(child, signal.SIGTERM)
        code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
        ran = time.monotonic() - since
        if stopping:
            return code
        if restarting:  # asked for by the management API (system/restart), after its drain
            restarting = False
            print(f"wexec: the server stopped for a restart after {ran:.1f} s; starting it "
                  "again", file=sys.stderr, flush=True)
            continue
        if not started and code >= 0:
            print(f"wexec: the server exited with {code} while starting; not restarting it",
                  file=sys.stderr, flush=True)
            return code
        how = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
        print(f"wexec: the server process {how} after {ran:.1f} s; starting it again",
              file=sys.stderr, flush=True)
        delay = RESTART_DELAY_S[0] if ran > 60 else min(delay * 2, RESTART_DELAY_S[1])
        time.sleep(delay)
        if stopping:
            return code


def _child(run: Callable[[], None]) -> int:
    """The supervised server: in its own process group, so a terminal's Ctrl-C reaches only the
    supervisor (which passes it on once), and stopped if the supervisor itself dies."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGUSR1, signal.SIG_DFL)
    signal.signal(signal.SIGUSR2, signal.SIG_DFL)
    os.setpgid(0, 0)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: a killed supervisor leaves the server running, as without one
    try:
        run()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        return 0
    except Exception:
        log.exception("the server failed")
        return 1
    return 0


def _cannot_listen(host: str, port: int) -> str | None:
    """Why the server could not listen at this address (in use, not allowed), or None.

    Checked before supervising: uvicorn runs the app's start-up before it binds, so its failing
    to bind would otherwise look like a crash after start-up, and be restarted forever.
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _raise_open_files_limit() -> int:
    """Raise this process's open-files limit to its hard maximum (each connection is a file);
    returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return sys.maxsize if soft == resource.RLIM_INFINITY else soft


def _batch_scheduling() -> None:
    """Put this process, and every thread and process it starts, under SCHED_BATCH.

    A server's I/O threads and its event loop share the cores; under the default policy each
    wake-up of one (a response to write, a request read) preempts the other, and every switch
    costs both their caches. SCHED_BATCH keeps fairness but drops wake-up preemption. It needs
    no privilege; where the platform has no such policy, serving goes on without it.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError):
        pass


def add_serve_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `wexec serve` on the CLI's subcommands."""
    p = sub.add_parser("serve", help="serve a folder of scripts over HTTP")
    p.add_argument("--scripts", type=Path, help="scripts of the default tenant (default: scripts/)")
    p.add_argument("--tenants-root", type=Path,
                   help="serve many tenants from {DIR}/{subdomain}/{execId}/ instead")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8080)")
    p.add_argument("--data", type=Path, help="state and logs (default .wexec/ beside the scripts)")
    p.add_argument("--workers", type=int, help="server processes (default 1)")
    p.add_argument("--server", choices=["granian", "uvicorn", "hypercorn"],
                   help="ASGI server (default granian)")
    p.add_argument("--loop", choices=["uvloop", "asyncio"], help="event loop (default uvloop)")
    p.add_argument("--scheduler", choices=["batch", "normal"],
                   help="Linux scheduling policy of the server processes (default batch)")
    p.set_defaults(fn=_cmd_serve)


def _cmd_serve(args: argparse.Namespace) -> int:
    flags = {
        name: getattr(args, name)
        for name in ("scripts", "tenants_root", "host", "port", "data", "workers", "server", "loop",
                     "scheduler")
        if getattr(args, name) is not None
    }
    flags = {k: v.resolve() if isinstance(v, Path) else v for k, v in flags.items()}
    if "tenants_root" in flags and "data" not in flags:
        flags["data"] = flags["tenants_root"].parent / ".wexec"  # beside the scripts, as for --scripts
    settings = Settings(**flags)
    from runtime.api.tokens import refusal_to_serve

    if (refusal := refusal_to_serve(settings)) is not None:
        print(f"wexec: {refusal}", file=sys.stderr, flush=True)
        return 2
    root = settings.tenants_root or settings.scripts
    print(f"wexec: serving {root} on http://{settings.host}:{settings.port} "
          f"({settings.server} on {settings.loop}, {settings.workers} worker(s)); "
          f"logs in {settings.data_dir / 'logs'}", flush=True)
    return serve(settings)
