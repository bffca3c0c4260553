"""`wexec serve`: run the app under an ASGI server, in one or more processes.

Each server process builds its own app — and so its own sandbox — from `WEXEC_*` environment
variables, which `serve` exports from the resolved settings: one path for every server and for
any number of workers. granian is the default: of the three, which all pass the whole suite, it
was the fastest in benches/http_load.py (about twice uvicorn's requests/s on a bare app, and a much
lower p99 for serverless scripts). hypercorn stays supported for HTTP/2 and HTTP/3.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from runtime.config import Settings

APP_FACTORY = "runtime.app:create_app"


def export(settings: Settings) -> None:
    """Put every setting into the environment, where worker processes read them back."""
    for name, value in settings.model_dump(exclude_none=True).items():
        os.environ[f"WEXEC_{name.upper()}"] = str(value)


def serve(settings: Settings, app: str = APP_FACTORY) -> None:
    """Serve until interrupted. `app` names an ASGI app factory: benches serve a bare app
    through exactly the same server configuration."""
    export(settings)
    if settings.scheduler == "batch":
        _batch_scheduling()
    if settings.server == "uvicorn":
        import uvicorn

        uvicorn.run(
            app, factory=True, host=settings.host, port=settings.port,
            workers=settings.workers, loop=settings.loop, http="httptools", lifespan="on",
            access_log=False, log_level="warning",
        )
    elif settings.server == "granian":
        from granian import Granian
        from granian.constants import Interfaces, Loops

        Granian(
            app, factory=True, address=settings.host, port=settings.port,
            interface=Interfaces.ASGI, workers=settings.workers, loop=Loops(settings.loop),
            log_access=False,
        ).serve()
    else:
        from hypercorn.config import Config
        from hypercorn.run import run

        config = Config()
        config.application_path = app + "()"
        config.bind = [f"{settings.host}:{settings.port}"]
        config.workers = 0 if settings.workers == 1 else settings.workers  # 0: this process
        config.worker_class = settings.loop
        config.accesslog = None
        run(config)


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
    root = settings.tenants_root or settings.scripts
    print(f"wexec: serving {root} on http://{settings.host}:{settings.port} "
          f"({settings.server} on {settings.loop}, {settings.workers} worker(s)); "
          f"logs in {settings.data_dir / 'logs'}", flush=True)
    serve(settings)
    return 0
