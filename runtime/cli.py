"""``wexec serve | run | build | token``: the command line."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs

from runtime.config import Settings
from runtime.server import add_serve_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wexec", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a script once and print its response")
    run.add_argument("file", type=Path)
    run.add_argument("--method", "-X", default="GET")
    run.add_argument("--path", help="request path (default: the script's route); fills route parameters")
    run.add_argument("--query", "-q", default="", help="query string, e.g. 'a=1&b=2'")
    run.add_argument("--header", "-H", action="append", default=[], help="'Name: value'")
    run.add_argument("--param", "-p", action="append", default=[], help="route parameter k=v")
    run.add_argument("--data", "-d", help="request body ('@file' reads a file)")
    run.add_argument("--timeout", type=int, help="override @timeout, ms")
    run.set_defaults(fn=_cmd_run)

    build = sub.add_parser("build", help="build the guest and compile its machine code")
    build.set_defaults(fn=_cmd_build)

    types = sub.add_parser("types", help="write wexec.d.ts (and a tsconfig.json) for editors")
    types.add_argument("dir", type=Path, nargs="?",
                       help="where to write them (default: the scripts folder, WEXEC_SCRIPTS)")
    types.set_defaults(fn=_cmd_types)

    add_serve_command(sub)

    token = sub.add_parser("token", help="management API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    hash_cmd = token_sub.add_parser(
        "hash", help="print a token's hash, as WEXEC_API_TENANT_TOKENS stores it")
    hash_cmd.add_argument("token", nargs="?",
                          help="the token (default: read from standard input, which keeps it "
                          "out of the shell's history)")
    hash_cmd.set_defaults(fn=_cmd_token_hash)
    new_cmd = token_sub.add_parser("new", help="make a random token and print it and its hash")
    new_cmd.set_defaults(fn=_cmd_token_new)

    args = parser.parse_args(argv)
    return int(args.fn(args) or 0)


def _cmd_token_hash(args: argparse.Namespace) -> int:
    from runtime.api.tokens import hash_token

    token = args.token if args.token is not None else sys.stdin.readline().rstrip("\r\n")
    if not token:
        print("wexec: no token given (as an argument or on standard input)", file=sys.stderr)
        return 2
    print(hash_token(token))
    return 0


def _cmd_token_new(args: argparse.Namespace) -> int:
    import secrets

    from runtime.api.tokens import hash_token

    token = secrets.token_urlsafe(32)
    print(f"token: {token}\nhash:  {hash_token(token)}")
    print("Give the token to its user; put the hash in WEXEC_API_TENANT_TOKENS, e.g. "
          f'{{"alice/1": "{hash_token(token)}"}}', file=sys.stderr)
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from runtime.sandbox import Sandbox

    started = time.perf_counter()
    sandbox = Sandbox(Settings())
    print(f"guest {sandbox.engine.guest_hash[:16]} ready in {time.perf_counter() - started:.2f} s")
    sandbox.close()
    return 0


def _cmd_types(args: argparse.Namespace) -> int:
    from runtime import typings

    folder: Path = args.dir if args.dir is not None else Settings().scripts
    if folder.exists() and not folder.is_dir():
        print(f"wexec: {folder} is a file; give the folder that holds your scripts",
              file=sys.stderr)
        return 2
    for path in typings.write(folder):
        print(f"wrote {path}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from runtime.catalog.routes import route_for, split_path
    from runtime.compiler import CompileError
    from runtime.sandbox import Invocation, Sandbox, ScriptError
    from runtime.types import Query

    file: Path = args.file.resolve()
    if not file.is_file():
        print(f"wexec: no such script: {args.file}", file=sys.stderr)
        return 2
    settings = Settings()
    root = settings.scripts.resolve()
    if not file.is_relative_to(root):
        root = file.parent
        settings = Settings(scripts=root)  # its folder is its tenant's: what fs and shared use
    rel = file.relative_to(root).as_posix()
    headers = {}
    for h in args.header:
        name, _, value = h.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if args.data is not None:
        body = Path(args.data[1:]).read_bytes() if args.data.startswith("@") else args.data.encode()
        headers.setdefault("content-type", _guess_type(body))
    route = route_for(rel)
    path = args.path or route.pattern
    query = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(args.query).items()}
    params: Query = dict(route.match(split_path(path)) or {})
    params.update(p.split("=", 1) for p in args.param)
    url = f"http://localhost{path}" + (f"?{args.query}" if args.query else "")

    sandbox = Sandbox(settings)
    try:
        artefact = sandbox.compiler.compile_file(root, rel)
        inv = Invocation(args.method.upper(), path, url, headers, query, params, body, "127.0.0.1")
        kw = {} if args.timeout is None else {"timeout_ms": args.timeout}
        result = sandbox.run_sync(artefact, inv, **kw)
    except (CompileError, ScriptError) as exc:
        print(f"wexec: {exc}", file=sys.stderr)
        if isinstance(exc, ScriptError) and exc.stack:
            print(exc.stack, file=sys.stderr)
        return 1
    finally:
        sandbox.close()
    for log in result.logs:
        print(f"[{log.level}] {log.message}", file=sys.stderr)
    print(result.status)
    for name, value in result.headers:
        print(f"{name}: {value}")
    print()
    sys.stdout.flush()
    sys.stdout.buffer.write(result.body)
    if result.body and not result.body.endswith(b"\n"):
        sys.stdout.buffer.write(b"\n")
    return 0


def _guess_type(body: bytes) -> str:
    return "application/json" if body.lstrip()[:1] in (b"{", b"[") else "text/plain"


if __name__ == "__main__":
    sys.exit(main())
