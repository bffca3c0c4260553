"""The pinned TypeScript compiler: installed with npm into the build cache on first need, and a
long-lived node process per server process that type-checks one script at a time against
wexec.d.ts.

Running `tsc` per check costs seconds (node start-up, parsing TypeScript's libraries); the
checker process (tsserve.js) loads TypeScript and the libraries once, so a warm check costs
only the script's own parse and check (tens of milliseconds). Nothing here runs on the request
path of a script: only the validation endpoints and the typings tests use it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from runtime.typings import DECLARATIONS, TSCONFIG

log = logging.getLogger(__name__)

VERSION = "5.9.3"
"""Pinned: the checker whose verdicts the typings tests expect (typescript on npm, Apache-2.0)."""

SERVER = Path(__file__).resolve().with_name("tsserve.js")
CHECK_TIMEOUT_S = 10.0
"""A check longer than this is a pathological script: the process is killed and restarted."""
START_TIMEOUT_S = 60.0
INSTALL_TIMEOUT_S = 300.0
IDLE_S = 600.0
"""The checker process (about 180 MB resident) stops after this long without a check."""
RETRY_INSTALL_S = 300.0
"""A failed npm install is not retried on every call, only after this long."""


class Unavailable(Exception):
    """No type check can run here; the message says why and how to fix it."""


@dataclass(frozen=True)
class Diagnostic:
    code: int
    message: str
    line: int | None
    column: int | None


_install_lock = threading.Lock()
_install_failed: tuple[float, str] | None = None


def installed(cache_dir: Path) -> Path:
    """The `typescript` package folder, installed with npm into `cache_dir` if it is not there
    yet. Concurrent callers (threads and processes) install once; raises Unavailable."""
    global _install_failed
    home = cache_dir / f"typescript-{VERSION}"
    package = home / "node_modules" / "typescript"
    if (package / "package.json").is_file():
        return package
    with _install_lock:
        if _install_failed is not None and time.monotonic() - _install_failed[0] < RETRY_INSTALL_S:
            raise Unavailable(_install_failed[1])
        cache_dir.mkdir(parents=True, exist_ok=True)
        with open(cache_dir / f".typescript-{VERSION}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be installing it
            if (package / "package.json").is_file():
                return package
            try:
                _install(home)
            except Unavailable as exc:
                _install_failed = (time.monotonic(), str(exc))
                raise
    _install_failed = None
    return package


def _install(home: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm is not on the server's PATH, so TypeScript cannot be installed: "
                          "install Node.js with npm (e.g. apt-get install nodejs npm) and "
                          "restart the server")
    log.info("installing typescript %s with npm (about 10 s) into %s", VERSION, home)
    staged = Path(tempfile.mkdtemp(prefix=".typescript-", dir=home.parent))
    try:
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(staged),
             f"typescript@{VERSION}"], capture_output=True, text=True,
            timeout=INSTALL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        shutil.rmtree(staged, ignore_errors=True)
        raise Unavailable(f"npm install typescript@{VERSION} took over {INSTALL_TIMEOUT_S:.0f} "
                          "s: check the server's access to the npm registry") from None
    if done.returncode != 0:
        shutil.rmtree(staged, ignore_errors=True)
        raise Unavailable(f"npm could not install typescript@{VERSION} "
                          f"({done.stderr.strip()[-300:] or f'exit {done.returncode}'}): check "
                          "the server's access to the npm registry")
    os.rename(staged, home)  # whole or not at all, under the lock
    log.info("installed typescript %s", VERSION)


def tsc_binary(cache_dir: Path) -> Path:
    """The `tsc` command of the pinned TypeScript (installed if needed)."""
    return installed(cache_dir).parent / ".bin" / "tsc"


class Checker:
    """One node process serving type checks; started on first use, restarted if it dies or a
    check times out, stopped when idle. Thread-safe: checks are served one at a time."""

    def __init__(self, cache_dir: Path) -> None:
        self._cache_dir = cache_dir
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._next_id = 0
        self._pid = os.getpid()
        self._idle: threading.Timer | None = None

    def check(self, code: str, name: str = "script.ts") -> list[Diagnostic]:
        """TypeScript's errors for `code` as a module named `name` with wexec's globals (a
        top-level `return` is allowed). Raises Unavailable when no check can run."""
        with self._lock:
            proc = self._started()
            self._next_id += 1
            request = {"id": self._next_id, "name": name, "code": code}
            try:
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(request) + "\n")
                proc.stdin.flush()
            except OSError:
                self._stop()
                raise Unavailable("the TypeScript checker process exited; it restarts on the "
                                  "next check") from None
            answer = self._answer(CHECK_TIMEOUT_S, f"a type check took over "
                                  f"{CHECK_TIMEOUT_S:.0f} s; the checker was restarted")
            if self._idle is not None:
                self._idle.cancel()
            self._idle = threading.Timer(IDLE_S, self.close)
            self._idle.daemon = True
            self._idle.start()
        if "error" in answer:
            raise Unavailable(f"the TypeScript checker failed: {answer['error'][:500]}")
        return [Diagnostic(**d) for d in answer["diagnostics"]]

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _started(self) -> subprocess.Popen[str]:
        if self._pid != os.getpid():  # a forked child: the process belongs to the parent
            self._proc, self._pid = None, os.getpid()
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._stop()
        node = shutil.which("node")
        if node is None:
            raise Unavailable("node is not on the server's PATH: install Node.js 18 or later "
                              "with npm (e.g. apt-get install nodejs npm) and restart the "
                              "server")
        package = installed(self._cache_dir)
        started = time.monotonic()
        self._proc = subprocess.Popen(
            [node, str(SERVER), str(package), str(DECLARATIONS),
             json.dumps(TSCONFIG["compilerOptions"])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        self._lines = queue.Queue()
        assert self._proc.stdout is not None
        threading.Thread(target=_pump, args=(self._proc.stdout, self._lines),
                         name="tsc-checker", daemon=True).start()
        ready = self._answer(START_TIMEOUT_S, "the TypeScript checker did not start in "
                             f"{START_TIMEOUT_S:.0f} s")
        log.info("typescript %s checker started in %.1f s (pid %d)", ready.get("ready"),
                 time.monotonic() - started, self._proc.pid)
        return self._proc

    def _answer(self, timeout: float, slow: str) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self._stop()
            raise Unavailable(slow) from None
        if line is None:
            why = self._stop()
            raise Unavailable(f"the TypeScript checker process exited ({why}); it restarts on "
                              "the next check")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def _stop(self) -> str:
        """Kill the process if any; returns the end of what it wrote to stderr."""
        proc, self._proc = self._proc, None
        if proc is None:
            return ""
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        assert proc.stdin is not None and proc.stderr is not None
        err = proc.stderr.read().strip()
        with contextlib.suppress(OSError):
            proc.stdin.close()
        proc.stderr.close()  # stdout is the pump thread's, closed when it reaches the end
        return err[-300:] or f"exit {proc.returncode}"


def _pump(stdout: IO[str], lines: queue.Queue[str | None]) -> None:
    """Hand the process's output lines to the caller; None once it ends."""
    with stdout:
        for line in stdout:
            lines.put(line)
    lines.put(None)


_checkers: dict[Path, Checker] = {}
_checkers_lock = threading.Lock()


def checker(cache_dir: Path) -> Checker:
    """This process's checker for `cache_dir`'s TypeScript."""
    with _checkers_lock:
        found = _checkers.get(cache_dir)
        if found is None:
            found = _checkers[cache_dir] = Checker(cache_dir)
        return found
