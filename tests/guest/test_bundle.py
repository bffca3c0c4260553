"""The prelude is ES modules under guest/prelude/, bundled into one script at guest-build time
(build/guest.py): every module is in the bundle, the hash covers every file, names survive the
bundling, and a prelude frame leads to its module."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from runtime.buildtools import load_build_module
from runtime.config import REPO_ROOT
from runtime.sandbox import Invocation, Sandbox

PRELUDE = REPO_ROOT / "guest" / "prelude"
MARKER = re.compile(r"^// (guest/prelude/\S+\.js)$", re.MULTILINE)


def bundle(sandbox: Sandbox) -> str:
    guest = load_build_module("guest")
    return (guest.engine_path(sandbox.settings.cache_dir).parent / guest.PRELUDE_NAME).read_text()


def run(sandbox: Sandbox, source: str, name: str) -> object:
    artefact = sandbox.compiler.compile_source(source, name)
    return json.loads(sandbox.run_sync(artefact, Invocation("GET", "/t")).body)


def test_every_prelude_module_is_in_the_bundle(sandbox: Sandbox) -> None:
    files = {p.relative_to(REPO_ROOT).as_posix() for p in PRELUDE.rglob("*.js")}
    assert set(MARKER.findall(bundle(sandbox))) == files


def test_a_prelude_frame_leads_to_its_module(sandbox: Sandbox) -> None:
    src = "export default () => { try { new URL('no url'); } catch (e) { return { stack: e.stack }; } };"
    stack = run(sandbox, src, "frames.js")["stack"]  # type: ignore[index]
    frame = re.search(r"at (\S+) \(prelude\.js:(\d+):\d+\)", stack)  # QuickJS: name (file:line:col)
    assert frame, stack
    above = bundle(sandbox).split("\n")[: int(frame.group(2))]
    modules = [m.group(1) for line in above if (m := MARKER.match(line))]
    assert modules[-1] == "guest/prelude/lib/url.js", frame.group(0)


def test_globals_keep_their_names(sandbox: Sandbox) -> None:
    names = ["Buffer", "URL", "URLSearchParams", "Headers", "Response", "ReadableStream",
             "TextEncoder", "TextDecoder", "require", "setTimeout", "structuredClone"]
    src = f"export default () => {json.dumps(names)}.map((n) => globalThis[n].name);"
    assert run(sandbox, src, "names.js") == names


def test_the_engine_hash_covers_every_guest_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    guest = load_build_module("guest")
    copy = tmp_path / "guest"
    shutil.copytree(REPO_ROOT / "guest", copy)
    monkeypatch.setattr(guest, "GUEST_DIR", copy)
    before = guest.guest_hash()
    (copy / "ABI.md").write_text("documentation only")
    assert guest.guest_hash() == before
    for name in ("prelude/lib/url.js", "prelude/host/timers.js", "shim/json.c", "abi.h"):
        with (copy / name).open("a") as f:
            f.write("\n")
        assert guest.guest_hash() != before, name
        before = guest.guest_hash()
