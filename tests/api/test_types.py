"""The typings: `wexec types DIR` writes wexec.d.ts (and a tsconfig.json), `GET /api/v1/exec/types`
serves it, and TypeScript's own checker accepts it, every built-in template and a script using
each global, and rejects a script that misuses them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runtime import typings
from runtime.compiler.tsc import Checker, Unavailable, tsc_binary
from runtime.templates import builtins, render
from tests.support import REPO, running_server, settings_for_tests

TOP_LEVEL_RETURN = "TS1108"
"""TypeScript's error for a top-level `return`, which wexec scripts may use."""

EVERY_GLOBAL = """\
// @ai true
const crypto = require('crypto');
const { URL: NodeURL } = require('node:url');
const id: string = metadata.parameters.id as string;
const q = metadata.query.q;
const body: unknown = req.body;
const hits: number = (shared.hits ?? 0) + 1;
shared.hits = hits;
const visits: number = shared.increment('visits');
shared.update<string[]>('queue', (q) => [...(q ?? []), 'job']);
const upstream = await fetch('https://example.com/x', { method: 'POST', body: JSON.stringify({ id }),
  headers: new Headers({ 'content-type': 'application/json' }), signal: new AbortController().signal });
const data: unknown = await upstream.json();
const text: string = await fs.read('notes.txt');
const bytes: Uint8Array = await fs.read('image.png', { encoding: null });
await fs.write('out/a.ts', 'return 1;');
const listed = (await fs.list('out', { recursive: true })).filter((e) => e.isFile);
const { text: answer, usage } = await generateText({ model, system: 's', prompt: 'p' });
const streamed = streamText({ model, prompt: 'p' });
for await (const piece of streamed.textStream) console.log(piece);
const { object } = await generateObject<{ n: number }>({ model, schema: { type: 'object' }, prompt: 'p' });
const n: number = object.n;
const short = await ai.generateText({ prompt: 'hello' });
const direct = await streamText({ model: openai('gpt-4o'), prompt: 'p' }).text;
const completion = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
const nested = await isolate.eval('return 1 + 1;', { req }, { timeout: 100 });
const mac: string = crypto.createHmac('sha256', 'k').update(req.rawBody).digest('hex');
const same: boolean = crypto.timingSafeEqual(Buffer.from(mac), Buffer.from('x'));
const uuid: string = globalThis.crypto.randomUUID();
const timer = setTimeout(() => {}, 10);
clearTimeout(timer);
setImmediate(() => {});
const encoded = new TextEncoder().encode(btoa('x'));
const url = new URL('/a?b=1', 'https://example.com');
const params = new URLSearchParams(url.search);
const copy = structuredClone({ a: 1 });
const env: string | undefined = process.env.API_KEY;
const stream = new ReadableStream<string>({ start(c) { c.enqueue('x'); c.close(); } });
res.status(201).setHeader('x-id', id).cookie('s', 'v', { httpOnly: true });
console.log(visits, q, body, data, text, bytes, listed, answer, usage, n, short.text, direct, completion, nested,
  same, uuid, encoded, params, copy, env, new NodeURL('https://a.example'));
if (!id) return res.status(400).json({ error: 'id required' });
return new Response(stream, { status: 200 });
"""

MISUSES = {
    "res.status('x');": "TS2345",  # a status is a number
    "const n: number = metadata.path;": "TS2322",
    "req.nope();": "TS2339",
    "const s: string = await fs.exists('a');": "TS2322",
    "generateText({ prompt: 1 });": "TS2322",
}


@pytest.fixture(scope="module")
def tsc() -> Path:
    """TypeScript's checker, installed once into the build cache with npm."""
    try:
        return tsc_binary(settings_for_tests().cache_dir)
    except Unavailable as exc:
        pytest.skip(str(exc))


def check(tsc: Path, folder: Path) -> list[str]:
    """tsc's errors for the project in `folder`, less the top-level returns wexec allows."""
    done = subprocess.run([str(tsc), "-p", str(folder), "--pretty", "false"], cwd=folder,
                          capture_output=True, text=True, timeout=300, check=False)
    return [line for line in done.stdout.splitlines()
            if "error TS" in line and TOP_LEVEL_RETURN not in line]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A scripts folder after `wexec types`, run as a user runs it."""
    folder = tmp_path / "scripts"
    done = subprocess.run([sys.executable, "-m", "runtime.cli", "types", str(folder)], cwd=REPO,
                          capture_output=True, text=True, check=True)
    assert f"wrote {folder / 'wexec.d.ts'}" in done.stdout
    assert f"wrote {folder / 'tsconfig.json'}" in done.stdout
    return folder


def test_wexec_types_writes_the_declarations_and_keeps_a_tsconfig(project: Path) -> None:
    assert (project / "wexec.d.ts").read_text() == typings.declarations()
    (project / "tsconfig.json").write_text('{"mine": true}\n')
    (project / "wexec.d.ts").write_text("stale")
    again = subprocess.run([sys.executable, "-m", "runtime.cli", "types", str(project)],
                           cwd=REPO, capture_output=True, text=True, check=True)
    assert "tsconfig.json" not in again.stdout
    assert (project / "tsconfig.json").read_text() == '{"mine": true}\n'  # never replaced
    assert (project / "wexec.d.ts").read_text() == typings.declarations()  # always current


def test_wexec_types_refuses_a_file(tmp_path: Path) -> None:
    file = tmp_path / "a.ts"
    file.write_text("return 1;")
    done = subprocess.run([sys.executable, "-m", "runtime.cli", "types", str(file)], cwd=REPO,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "is a file" in done.stderr


def test_the_declarations_name_every_injected_global() -> None:
    text = typings.declarations()
    for name in ("req", "res", "metadata", "shared", "fs", "isolate", "model", "openai", "ai",
                 "module", "process", "global"):
        assert f"declare const {name}:" in text, name
    for name in ("generateText", "streamText", "generateObject", "jsonSchema", "require",
                 "setImmediate"):
        assert f"declare function {name}" in text, name
    assert "declare class Buffer" in text
    assert '/// <reference lib="dom" />' in text  # fetch, Response, URL, crypto, timers


def test_get_types_serves_the_declarations(tmp_path: Path) -> None:
    with running_server(["--scripts", str(tmp_path), "--data", str(tmp_path / ".data")]) as url:
        r = httpx.get(f"{url}/api/v1/exec/types")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/typescript")
        assert 'filename="wexec.d.ts"' in r.headers["content-disposition"]
        assert r.text == typings.declarations()
        spec = httpx.get(f"{url}/api/v1/exec/openapi.json").json()
        assert "application/typescript; charset=utf-8" in \
            spec["paths"]["/types"]["get"]["responses"]["200"]["content"]


def test_tsc_accepts_the_declarations_alone(tsc: Path, project: Path) -> None:
    assert check(tsc, project) == []


def test_tsc_accepts_a_script_using_every_global(tsc: Path, project: Path) -> None:
    (project / "everything.ts").write_text(EVERY_GLOBAL)
    assert check(tsc, project) == []


def test_tsc_accepts_every_builtin_template(tsc: Path, project: Path) -> None:
    for template in builtins().values():
        path = project / template.metadata["outputPath"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(template, {}).code)
    assert check(tsc, project) == []


@pytest.fixture
def misused(project: Path) -> Iterator[Path]:
    for i, line in enumerate(MISUSES):
        (project / f"misuse{i}.ts").write_text(f"{line}\nexport {{}};\n")
    yield project


def test_tsc_rejects_scripts_that_misuse_the_globals(tsc: Path, misused: Path) -> None:
    errors = check(tsc, misused)
    for i, code in enumerate(MISUSES.values()):
        assert any(line.startswith(f"misuse{i}.ts") and code in line for line in errors), (
            i, errors)


@pytest.fixture(scope="module")
def checker(tsc: Path) -> Iterator[Checker]:
    """The server's checker process (validate/typescript's), over the same TypeScript."""
    found = Checker(settings_for_tests().cache_dir)
    yield found
    found.close()


def test_the_servers_checker_agrees_with_tsc(checker: Checker) -> None:
    """It also checks what a top-level `return` returns, which tsc skips (TS1108)."""
    assert checker.check(EVERY_GLOBAL) == []
    for template in builtins().values():
        assert checker.check(render(template, {}).code) == [], template.metadata["outputPath"]
    for line, code in MISUSES.items():
        assert [f"TS{d.code}" for d in checker.check(line)] == [code], line
    assert [f"TS{d.code}" for d in checker.check("return res.status('x');")] == ["TS2345"]
