"""npm on the host, for the management API: installs into a tenant's own `node_modules`.

npm runs as a subprocess in the tenant's folder, only when the API asks (never while serving a
script), always with `--ignore-scripts` (a package's install scripts would run arbitrary code
on the host), and within `WEXEC_NPM_TIMEOUT_S`. One tenant's runs are serialised, across the
server's processes too (a lock file in the tenant's folder), since two npm runs in one folder
corrupt each other's tree. What npm prints goes to the server's log, line by line, as it runs.
Only registry packages are accepted (`name`, `name@range`, `@scope/name@tag`): a `file:` or
`link:` spec, a path, a git or tarball URL could make `node_modules` point outside the tenant.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from runtime.compiler.packages import installed
from runtime.http.errors import HTTPError

log = logging.getLogger("wexec.npm")

_NAME = r"(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*"
_RANGE = r"[0-9A-Za-z.^~<>=|*+\- ]+"
SPEC = re.compile(rf"^(?P<name>{_NAME})(?:@(?P<range>{_RANGE}))?$", re.IGNORECASE)
"""A registry package with an optional version, range or tag; nothing that names a place."""

MANIFEST = "package.json"
LOCK = ".npm.lock"
"""The lock file in the tenant's folder that serialises its npm runs (hidden: never a route)."""

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


@dataclass(frozen=True)
class Spec:
    """One requested package: its name and the version or range asked for (None: latest)."""

    name: str
    range: str | None

    def __str__(self) -> str:
        return self.name if self.range is None else f"{self.name}@{self.range}"


def parse_spec(text: str) -> Spec:
    """A registry spec, or a 400 saying what is accepted."""
    match = SPEC.match(text.strip())
    if match is None:
        raise HTTPError(400, "invalid_module",
                        f"{text!r} is not a registry package spec; give name, name@version, "
                        "name@range or name@tag (file:, link:, git and URL specs are refused: "
                        "packages come from the registry into the tenant's own folder)",
                        module=text)
    return Spec(match["name"], (match["range"] or "").strip() or None)


def check_range(name: str, value: object) -> str:
    """A dependency's range as package.json may hold it here (the same rule as `parse_spec`)."""
    if not isinstance(value, str) or parse_spec(f"{name}@{value}").range is None:
        raise HTTPError(400, "invalid_module",
                        f"dependency {name}: {value!r} is not a version, range or tag; "
                        "file:, link:, git and URL specs are refused", module=name)
    return value


REGISTRY = "https://registry.npmjs.org/"
"""Where packages come from; a lock file naming any other place is refused."""


def check_project(root: Path) -> None:
    """Refuse to run npm on what a tenant could have written to reach outside its folder: an
    `.npmrc` (a registry, proxy or shell of its choosing, run by the host), a package.json
    dependency that is not a registry range, a lock file entry that is a link or resolves
    anywhere but the registry. Every npm run of the API checks this first."""
    if (root / ".npmrc").exists():
        raise HTTPError(400, "npmrc_refused", "the tenant's folder has an .npmrc: npm "
                        "settings are the server's; delete it (scripts/delete path=.npmrc)")
    manifest = read_manifest(root)
    for section in ("dependencies", "devDependencies", "optionalDependencies",
                    "peerDependencies"):
        entries = manifest.get(section) if manifest is not None else None
        for name, value in (entries.items() if isinstance(entries, dict) else ()):
            check_range(name, value)
    try:
        lock = json.loads((root / "package-lock.json").read_text("utf-8"))
    except (OSError, ValueError):
        return  # none, or unreadable: npm makes or rejects it
    packages = lock.get("packages") if isinstance(lock, dict) else None
    for where, entry in (packages.items() if isinstance(packages, dict) else ()):
        if not where or not isinstance(entry, dict):
            continue
        resolved = entry.get("resolved")
        if entry.get("link") or (isinstance(resolved, str)
                                 and not resolved.startswith(REGISTRY)):
            raise HTTPError(400, "lock_refused", f"package-lock.json: {where} is "
                            f"{'a link' if entry.get('link') else 'from ' + str(resolved)}; "
                            f"packages come from {REGISTRY} only: delete package-lock.json "
                            "or that entry")


@dataclass(frozen=True)
class NpmRun:
    """A finished npm run: its exit status, its output and how long it took."""

    returncode: int
    stdout: str
    stderr: str
    duration_ms: float


def _lock_of(root: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(str(root), threading.Lock())


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise HTTPError(503, "npm_unavailable", "npm is not installed on the server (not on "
                        "PATH); install Node.js and npm to manage packages")
    return npm


async def run(root: Path, args: list[str], timeout_s: float) -> NpmRun:
    """`npm <args> --ignore-scripts` in `root`, serialised per tenant; 504 past `timeout_s`."""
    return await asyncio.to_thread(_run, root, args, timeout_s)


def _run(root: Path, args: list[str], timeout_s: float) -> NpmRun:
    npm = _npm()
    command = [npm, *args, "--ignore-scripts", f"--registry={REGISTRY}", "--no-audit", "--no-fund", "--no-progress",
               "--no-update-notifier", "--prefix", str(root)]
    started = time.monotonic()
    deadline = started + timeout_s
    with _lock_of(root), open(root / LOCK, "a") as held:
        while True:  # another process's run: wait for it, within our own deadline
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise _timeout(root, args, timeout_s) from None
                time.sleep(0.1)
        try:
            return _spawn(command, root, deadline, started)
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)


def _spawn(command: list[str], root: Path, deadline: float, started: float) -> NpmRun:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEXEC_")}
    proc = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    stderr: list[str] = []
    stdout: list[str] = []

    def relay() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            stderr.append(line)
            log.info("npm %s (%s): %s", command[1], root, line.rstrip())

    def collect() -> None:
        assert proc.stdout is not None
        stdout.append(proc.stdout.read())

    relaying = threading.Thread(target=relay, daemon=True)
    collecting = threading.Thread(target=collect, daemon=True)
    relaying.start()
    collecting.start()
    try:
        proc.wait(timeout=max(deadline - time.monotonic(), 0.001))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
        raise _timeout(root, command[1:2], deadline - started) from None
    collecting.join(5)
    relaying.join(5)
    took = (time.monotonic() - started) * 1000
    log.info("npm %s in %s: exit %d after %.0f ms", command[1], root, proc.returncode, took)
    return NpmRun(proc.returncode, "".join(stdout), "".join(stderr), took)


def _timeout(root: Path, args: list[str], timeout_s: float) -> HTTPError:
    return HTTPError(504, "npm_timeout", f"npm {' '.join(args[:1])} did not finish within "
                     f"{timeout_s:.0f} s (WEXEC_NPM_TIMEOUT_S); try again, or raise the limit",
                     timeout_s=timeout_s)


_REFUSED_CODES = ("E404", "ETARGET", "EINVALIDPACKAGENAME", "EINVALIDTAGNAME", "ERESOLVE",
                  "EBADENGINE", "EUNSUPPORTEDPROTOCOL")
"""npm's codes for a request it refuses (an unknown package or version, a conflict): 400s;
anything else (the registry unreachable, a disk error) is the server's 502."""


def failed(run_: NpmRun, what: str) -> HTTPError:
    """A failed npm run as the API's error, with npm's own explanation (its last lines)."""
    lines = [ln.removeprefix("npm error").removeprefix("npm ERR!").strip()
             for ln in run_.stderr.splitlines()]
    lines = [ln for ln in lines if ln and "complete log of this run" not in ln
             and not ln.startswith("/")]
    code = next((ln.split()[1] for ln in lines if ln.startswith("code ") and len(ln.split()) > 1),
                None)
    reason = " ".join(lines[-6:]) or "no output"
    status = 400 if code in _REFUSED_CODES else 502
    return HTTPError(status, "npm_failed", f"{what} failed (npm exit {run_.returncode}"
                     f"{', ' + code if code else ''}): {reason}", exitCode=run_.returncode,
                     npmCode=code)


def read_manifest(root: Path) -> dict[str, object] | None:
    """The tenant's package.json, None if it has none; a 422 if it is not a JSON object."""
    file = root / MANIFEST
    try:
        text = file.read_text("utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise HTTPError(422, "invalid_package_json", f"package.json is not valid JSON ({exc}); "
                        "fix it with scripts/write or replace it with package/init force=true"
                        ) from None
    if not isinstance(data, dict):
        raise HTTPError(422, "invalid_package_json", "package.json is not a JSON object; "
                        "replace it with package/init force=true")
    return data


def installed_version(root: Path, name: str) -> str | None:
    """The version of `name` in the tenant's node_modules, if it is installed."""
    manifest = installed(root, name)
    version = manifest.get("version") if manifest is not None else None
    return version if isinstance(version, str) else None
