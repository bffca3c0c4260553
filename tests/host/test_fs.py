"""``fs`` through real scripts on a real server: files read and written inside the tenant's
folder and nowhere else, refusals by rule, the quota and the file cap, a script written through
``fs`` served by the very next request, and a write killed mid-way leaving the old file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.catalog.files import TenantFiles
from runtime.host import fs
from runtime.sandbox import ScriptError
from tests.host.harness import holding
from tests.support import REPO, running_server, settings_for_tests, write_scripts

SCRIPTS = {
    "rw.ts": (
        "await fs.write('data/note.txt', 'note ' + metadata.query.n);\n"
        "await fs.append('data/note.txt', '!');\n"
        "await fs.write('data/raw.bin', new Uint8Array([0, 255, 7]));\n"
        "return {\n"
        "  text: await fs.read('data/note.txt'),\n"
        "  raw: Array.from(await fs.read('data/raw.bin', { encoding: null })),\n"
        "  names: (await fs.list('data')).map((e) => e.name),\n"
        "  stat: await fs.stat('data/note.txt'),\n"
        "  exists: [await fs.exists('data/note.txt'), await fs.exists('data/none')],\n"
        "};\n"
    ),
    "worker-read.ts": "// @mode worker\nreturn { text: await fs.read(metadata.query.path) };\n",
    "sizes.ts": (
        "const out = {};\n"
        "for (const p of ['small.txt', 'large.txt', 'toolarge.txt']) {\n"
        "  try { out[p] = (await fs.read(p)).length; } catch (e) { out[p] = e.message; }\n"
        "}\nreturn out;\n"
    ),
    "tidy.ts": (
        "await fs.mkdir('a/b');\nawait fs.write('a/b/x.txt', 'x');\n"
        "await fs.move('a/b/x.txt', 'a/y.txt');\nconst moved = await fs.read('a/y.txt');\n"
        "await fs.delete('a/y.txt');\nawait fs.delete('a/b');\n"
        "return { moved, left: (await fs.list('a')).map((e) => e.path) };\n"
    ),
    "try.ts": (
        "const { op, path } = metadata.query;\n"
        "try {\n"
        "  if (op === 'write') await fs.write(path, 'x'.repeat(Number(metadata.query.size || 1)));\n"
        "  else await fs.read(path);\n"
        "  return { ok: true };\n"
        "} catch (e) { return { error: e.message }; }\n"
    ),
    "make.ts": (
        "const name = metadata.query.name;\n"
        "await fs.write('made/' + name + '.ts', `return { made: ${JSON.stringify(name)} };`);\n"
        "return { wrote: name };\n"
    ),
    "rename.ts": (
        "const { from, to } = metadata.query;\n"
        "if (to) await fs.move(from, to); else await fs.delete(from);\nreturn {};\n"
    ),
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tenants")
    for tenant in ("alice/1", "bob/1"):
        write_scripts(root / tenant, SCRIPTS)
    secret = tmp_path_factory.mktemp("outside") / "secret.txt"
    secret.write_text("not the tenant's")
    os.symlink(secret, root / "alice" / "1" / "secret.txt")  # a file link out
    os.symlink(secret.parent, root / "alice" / "1" / "outside")  # a folder link out
    return root


@pytest.fixture(scope="module")
def base(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"WEXEC_TENANT_DISK_BYTES": "300000", "WEXEC_FS_MAX_FILE_BYTES": "100000"}
    with running_server(["--tenants-root", str(root), "--data", str(tmp_path_factory.mktemp("data"))], env) as url:
        yield url


def get(base: str, route: str, tenant: str = "alice-1", **query: Any) -> Any:
    r = httpx.get(base + route, params=query, headers={"host": f"{tenant}.example.com"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_files_are_written_and_read_back_inside_the_tenants_folder(base: str, root: Path) -> None:
    out = get(base, "/rw", n="1")
    assert out["text"] == "note 1!" and out["raw"] == [0, 255, 7]
    assert out["names"] == ["note.txt", "raw.bin"] and out["exists"] == [True, False]
    assert out["stat"]["size"] == 7 and out["stat"]["isFile"] is True
    assert (root / "alice" / "1" / "data" / "note.txt").read_text() == "note 1!"
    assert get(base, "/worker-read", path="data/note.txt") == {"text": "note 1!"}
    assert get(base, "/try", "bob-1", path="data/note.txt")["error"] == (
        "fs.read: data/note.txt: its folder 'data' does not exist (creating folders was not asked for)"
    )


def test_small_files_and_large_ones_are_read_and_past_the_cap_refused(base: str, root: Path) -> None:
    folder = root / "bob" / "1"
    for name, size in (("small.txt", 10), ("large.txt", 90_000), ("toolarge.txt", 100_001)):
        (folder / name).write_text("z" * size)
    assert get(base, "/sizes", "bob-1") == {
        "small.txt": 10, "large.txt": 90_000,
        "toolarge.txt": "fs.read: toolarge.txt is larger than the 100000 bytes one file may hold "
                        "(WEXEC_FS_MAX_FILE_BYTES)",
    }
    for name in ("small.txt", "large.txt", "toolarge.txt"):
        (folder / name).unlink()


def test_folders_are_made_moved_into_and_deleted(base: str) -> None:
    assert get(base, "/tidy") == {"moved": "x", "left": []}


@pytest.mark.parametrize(("path", "rule"), [
    ("/etc/passwd", "is absolute; give a path relative to the tenant's folder"),
    ("../bob/1/rw.ts", "climbs out with '..'; give a path inside the tenant's folder"),
    ("data/../../x", "climbs out with '..'"),
    ("a\0b", "contains a NUL byte, which no file name holds"),
    ("outside/secret.txt", "passes through a link that leads outside the tenant's folder"),
    ("secret.txt", "resolves outside the tenant's folder; links must stay inside it"),
])
def test_paths_leading_out_are_refused_naming_the_rule(base: str, path: str, rule: str) -> None:
    read = get(base, "/try", path=path)["error"]
    assert read.startswith("fs.read: ") and rule in read
    if path != "secret.txt":
        assert rule in get(base, "/try", op="write", path=path)["error"]


def test_a_write_to_a_link_out_is_refused_and_leaves_its_target(base: str, root: Path) -> None:
    link = root / "alice" / "1" / "secret.txt"
    assert get(base, "/try", op="write", path="secret.txt", size="3")["error"] == (
        "fs.write: secret.txt: is a link that leads outside the tenant's folder"
    )
    assert link.is_symlink() and Path(os.readlink(link)).read_text() == "not the tenant's"


def test_the_file_cap_and_the_tenants_quota_are_errors_naming_their_settings(base: str) -> None:
    big = get(base, "/try", "bob-1", op="write", path="big.txt", size="100001")["error"]
    assert big == ("fs.write: big.txt: 100001 bytes is more than one file may hold "
                   "(100000, WEXEC_FS_MAX_FILE_BYTES)")
    errors = [get(base, "/try", "bob-1", op="write", path=f"fill{i}.txt", size="90000").get("error")
              for i in range(4)]
    assert errors[:2] == [None, None]
    full = next(e for e in errors if e)
    assert "the tenant's folder would hold" in full and "past its quota of 300000 (WEXEC_TENANT_DISK_BYTES)" in full


def test_a_script_written_through_fs_is_served_by_the_very_next_request(base: str) -> None:
    for name in ("one", "two"):
        assert get(base, "/make", name=name) == {"wrote": name}
        assert get(base, f"/made/{name}") == {"made": name}


def test_a_script_moved_or_deleted_through_fs_is_rerouted_by_the_very_next_request(
        base: str) -> None:
    get(base, "/make", name="moving")
    get(base, "/rename", **{"from": "made/moving.ts", "to": "moved/here.ts"})
    assert get(base, "/moved/here") == {"made": "moving"}
    gone = httpx.get(base + "/made/moving", headers={"host": "alice-1.example.com"}, timeout=30)
    assert gone.status_code == 404
    get(base, "/rename", **{"from": "moved/here.ts"})
    gone = httpx.get(base + "/moved/here", headers={"host": "alice-1.example.com"}, timeout=30)
    assert gone.status_code == 404


def _write_under_way(folder: Path) -> bool:
    """Whether a write aside (`.name.<random>.tmp`) in ``folder`` holds bytes already."""
    for path in folder.iterdir():
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            try:
                if path.stat().st_size > 0:
                    return True
            except FileNotFoundError:  # renamed over its target meanwhile
                continue
    return False


WRITER = """
import sys
from pathlib import Path
from runtime.catalog.files import TenantFiles
files, size = TenantFiles(Path(sys.argv[1])), int(sys.argv[2])
for i in range(1_000_000):
    files.write("data.bin", (b"AB"[i % 2:i % 2 + 1]) * size)
"""


def test_a_write_killed_midway_leaves_the_old_file_whole(tmp_path: Path) -> None:
    """A real process rewriting a file with ``TenantFiles.write`` (what ``fs.write`` runs) is
    killed while a write is under way: the file is one whole version, never part of one."""
    size = 8 * 1024 * 1024
    (tmp_path / "data.bin").write_bytes(b"A" * size)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), str(size)], cwd=REPO)
    try:
        deadline = time.monotonic() + 30
        while not _write_under_way(tmp_path):
            assert time.monotonic() < deadline and writer.poll() is None, "no write seen under way"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    data = (tmp_path / "data.bin").read_bytes()
    assert len(data) == size and data in (b"A" * size, b"B" * size)
    assert [e.path for e in TenantFiles(tmp_path).entries()] == ["data.bin"]  # the rest is hidden


async def test_fs_is_refused_to_every_script_when_the_operator_turns_it_off(tmp_path: Path) -> None:
    settings = settings_for_tests(memory_limit=32 * 1024 * 1024, scripts=tmp_path, fs_enabled=False)
    (tmp_path / "a.txt").write_text("a")
    with holding(fs.UNIT, settings=settings) as h, pytest.raises(ScriptError) as caught:
        await h.run("return await fs.read('a.txt');")
    assert caught.value.message == (
        "host call fs.peek refused: this script is not granted fs (every script may use its own "
        "tenant's folder unless WEXEC_FS_ENABLED=false)"
    )


def _pids_serving(port: int) -> list[int]:
    """The processes of the `wexec serve` listening on ``port`` (the supervisor and its server)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                args = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"runtime.cli" in args and b"--port" in args and str(port).encode() in args:
                found.append(int(entry))
    return found


def test_a_server_killed_during_fs_write_leaves_the_old_file_whole(tmp_path: Path) -> None:
    """The real server, killed (SIGKILL, every process) while a script's ``fs.write`` is under
    way: the file is one whole version, and the write in progress is no file a script sees."""
    size = 4 * 1024 * 1024
    folder = tmp_path / "scripts"
    write_scripts(folder, {"rewrite.ts": (
        "// @mode worker\n// @timeout 60000\n"
        f"for (let i = 0; i < 1000; i++) await fs.write('data.txt', (i % 2 ? 'B' : 'A').repeat({size}));\n"
        "return {};\n"
    )})
    (folder / "data.txt").write_bytes(b"A" * size)
    with running_server(["--scripts", str(folder), "--data", str(tmp_path / "data")]) as base:
        port = int(base.rsplit(":", 1)[1])
        with ThreadPoolExecutor(1) as pool:
            pool.submit(lambda: httpx.get(base + "/rewrite", timeout=60))
            deadline = time.monotonic() + 60
            while not _write_under_way(folder):
                assert time.monotonic() < deadline, "no write seen under way"
            for pid in _pids_serving(port):
                os.kill(pid, signal.SIGKILL)
    data = (folder / "data.txt").read_bytes()
    assert len(data) == size and data in (b"A" * size, b"B" * size)
    assert "data.txt" in [e.path for e in TenantFiles(folder).entries()]
    assert not [e.path for e in TenantFiles(folder).entries() if e.path.endswith(".tmp")]
