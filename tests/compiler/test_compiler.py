"""The compiler with the real esbuild: shapes, TypeScript, errors, source maps, caching.

The guest's bytecode step is replaced by a double that returns the JS text, and that text is run
under node with the same calling convention as the guest, so semantics are checked without wasm.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from runtime.buildtools import load_build_module
from runtime.compiler import Artefact, CompileError, Compiler, Shape
from runtime.compiler import compiler as compiler_module
from runtime.compiler.magic import MagicCommentError
from runtime.compiler.sourcemap import decode_vlq

NODE = shutil.which("node")

HARNESS = r"""
const fs = require('fs');
const vm = require('vm');
const [file, filename, input] = process.argv.slice(2);
const factory = vm.runInThisContext(fs.readFileSync(file, 'utf8'), { filename });
const mod = { exports: {} };
factory(mod, mod.exports, require);
const handler = mod.exports.default ?? mod.exports;
const { body, query, parameters } = JSON.parse(input);
const sent = {};
const res = {
  status(code) { sent.status = code; return res; },
  json(value) { sent.json = value; return value; },
};
const metadata = { method: 'POST', path: '/t', query, parameters, headers: {}, scriptPath: filename };
Promise.resolve()
  .then(() => handler({ method: 'POST', body, headers: {} }, res, metadata, {}))
  .then(
    (value) => console.log(JSON.stringify({ value, sent })),
    (err) => console.log(JSON.stringify({ error: String(err.message), stack: String(err.stack) })),
  );
"""


@pytest.fixture(scope="session")
def esbuild() -> Path:
    cache = Path(os.environ.get("WEXEC_CACHE") or Path.home() / ".cache" / "wexec")
    return load_build_module("esbuild").ensure_esbuild(cache)


class FakeBytecode:
    """Stands in for the guest's wx_compile: the 'bytecode' is the JS text itself."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, js: str, filename: str) -> bytes:
        self.calls += 1
        return js.encode("utf-8")


@pytest.fixture
def fake() -> FakeBytecode:
    return FakeBytecode()


@pytest.fixture
def compiler(tmp_path: Path, esbuild: Path, fake: FakeBytecode) -> Compiler:
    return Compiler(tmp_path / "cache", "engine-a", fake, esbuild=esbuild)


def run(artefact: Artefact, tmp_path: Path, body: Any = None, query: dict | None = None,
        parameters: dict | None = None) -> dict:
    """Run the artefact's JS under node as the guest would: factory once, then the handler."""
    if NODE is None:
        pytest.skip("node is not installed")
    script = tmp_path / "harness.cjs"
    script.write_text(HARNESS)
    js = tmp_path / "artefact.js"
    js.write_bytes(artefact.bytecode)
    payload = json.dumps({"body": body, "query": query or {}, "parameters": parameters or {}})
    done = subprocess.run([NODE, str(script), str(js), artefact.path, payload],
                          capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


def test_canonical_script_returns_its_answer(compiler: Compiler, tmp_path: Path) -> None:
    source = """// @description top-level code
import { join } from 'path';
const who: string = metadata.query.who ?? 'world';
await new Promise((resolve) => setTimeout(resolve, 1));
return { greeting: `hello ${who}`, joined: join('a', 'b'), body: req.body };
"""
    artefact = compiler.compile_source(source, "hello.ts")
    assert artefact.shape is Shape.SCRIPT
    assert artefact.bytecode.startswith(b"(function (module, exports, require) {\n")
    assert artefact.bytecode.endswith(b"\n})")
    out = run(artefact, tmp_path, body={"x": 1}, query={"who": "wexec"})
    assert out["value"] == {"greeting": "hello wexec", "joined": "a/b", "body": {"x": 1}}


def test_canonical_script_without_imports_is_plain_commonjs(
    compiler: Compiler, tmp_path: Path
) -> None:
    """No ES module interop to run on every load: that was most of a fresh instance's load."""
    artefact = compiler.compile_source("return { method: metadata.method };\n", "plain.ts")
    js = artefact.bytecode.decode()
    assert "module.exports = function" in js and "__toCommonJS" not in js
    assert run(artefact, tmp_path)["value"] == {"method": "POST"}


def test_module_exports_handler(compiler: Compiler, tmp_path: Path) -> None:
    artefact = compiler.compile_source(
        "module.exports = (req, res) => res.json({ ok: true, body: req.body });\n", "echo.js")
    assert artefact.shape is Shape.COMMONJS
    assert run(artefact, tmp_path, body="hi")["sent"] == {"json": {"ok": True, "body": "hi"}}


def test_module_exports_async_function_with_imports(compiler: Compiler, tmp_path: Path) -> None:
    source = """import { createHash } from 'crypto';
module.exports = async function (req, res) {
  await null;
  return createHash('sha256').update('x').digest('hex').slice(0, 8);
};
"""
    artefact = compiler.compile_source(source, "hash.ts")
    assert artefact.shape is Shape.COMMONJS
    assert run(artefact, tmp_path)["value"] == "2d711642"


@pytest.mark.parametrize(
    "source",
    [
        "export default async (req, res) => ({ got: req.body });\n",
        "export default function handler(req) { return { got: req.body }; }\n",
        "function handler(req) { return { got: req.body }; }\nexport { handler as default };\n",
        "exports.default = (req) => ({ got: req.body });\n",
    ],
)
def test_default_export_shapes(compiler: Compiler, tmp_path: Path, source: str) -> None:
    artefact = compiler.compile_source(source, "shape.ts")
    assert artefact.shape in (Shape.ESM, Shape.COMMONJS)
    assert run(artefact, tmp_path, body=[1, 2])["value"] == {"got": [1, 2]}


def test_module_state_outlives_a_call_in_module_shape(compiler: Compiler, tmp_path: Path) -> None:
    source = "let count = 0;\nexport default () => { count += 1; return count + count; };\n"
    assert run(compiler.compile_source(source, "counter.ts"), tmp_path)["value"] == 2


def test_shape_ignores_comments_strings_and_regexes(compiler: Compiler) -> None:
    source = """// module.exports = x
/* export default y */
const s = "export default z";
const t = `module.exports = ${'q'}`;
const r = /export default/;
return [s, t, r.source];
"""
    assert compiler.compile_source(source, "quiet.ts").shape is Shape.SCRIPT


def test_typescript_constructs_in_a_canonical_script(compiler: Compiler, tmp_path: Path) -> None:
    source = """import type { IncomingMessage } from 'http';
interface User { id: string; tags?: string[] }
type Maybe<T> = T | undefined;
enum Role { Reader = 'r', Writer = 'w' }
function first<T>(items: T[]): Maybe<T> { return items[0]; }
abstract class Base { abstract name(): string }
class Named extends Base { constructor(private readonly n: string) { super(); } name() { return this.n; } }
const user = { id: metadata.parameters.id as string } satisfies User;
const tag: string = (user as User).tags?.[0] ?? 'none';
let req2: IncomingMessage | undefined;
export const exported = 1;
return { id: user.id, tag, role: Role.Writer, first: first<number>([7, 8]), name: new Named('n').name(), exported, req2: req2 ?? null };
"""
    artefact = compiler.compile_source(source, "api/users/[id].ts")
    out = run(artefact, tmp_path, parameters={"id": "42"})
    assert out["value"] == {"id": "42", "tag": "none", "role": "w", "first": 7, "name": "n",
                            "exported": 1, "req2": None}


def test_namespaces_in_a_module_shape_file(compiler: Compiler, tmp_path: Path) -> None:
    source = """namespace Geometry {
  export const unit = 2;
  export function area(side: number): number { return side * side * unit; }
}
enum Flag { Off, On }
export default (req: { body: { side: number } }) => ({ area: Geometry.area(req.body.side), flag: Flag.On });
"""
    artefact = compiler.compile_source(source, "geometry.ts")
    assert run(artefact, tmp_path, body={"side": 3})["value"] == {"area": 18, "flag": 1}


def test_namespace_in_a_canonical_script_is_a_clear_error(compiler: Compiler) -> None:
    with pytest.raises(CompileError) as caught:
        compiler.compile_source("// @mode worker\n\nnamespace N { export const v = 1 }\nreturn N.v;\n", "ns.ts")
    err = caught.value
    assert (err.path, err.line, err.col) == ("ns.ts", 3, 1)
    assert "namespace" in err.message and "export default" in err.message


def test_syntax_error_points_at_the_original_line(compiler: Compiler) -> None:
    source = """// @description broken
import {
  join,
} from 'path';
const fine = join('a');
const broken = ;
return fine;
"""
    with pytest.raises(CompileError) as caught:
        compiler.compile_source(source, "broken.ts")
    err = caught.value
    assert (err.path, err.line, err.col) == ("broken.ts", 6, 16)
    assert "broken.ts:6:16" in str(err)


def test_syntax_error_in_module_shape(compiler: Compiler) -> None:
    with pytest.raises(CompileError) as caught:
        compiler.compile_source("export default () => {\n  return 1 +;\n};\n", "m.ts")
    assert (caught.value.line, caught.value.col) == (2, 13)


def test_typescript_in_a_js_file_is_rejected(compiler: Compiler) -> None:
    with pytest.raises(CompileError) as caught:
        compiler.compile_source("const a: number = 1;\nreturn a;\n", "plain.js")
    assert caught.value.line == 1


def test_top_level_await_in_module_shape_is_reported(compiler: Compiler) -> None:
    with pytest.raises(CompileError) as caught:
        compiler.compile_source("const x = await 1;\nexport default () => x;\n", "tla.ts")
    assert caught.value.line == 1 and "await" in caught.value.message


def test_bad_magic_comments_fail_the_compile(compiler: Compiler, tmp_path: Path) -> None:
    with pytest.raises(CompileError) as caught:
        compiler.compile_source("// @mode sometimes\nreturn 1;\n", "magic.ts")
    assert caught.value.line == 1 and "@mode" in caught.value.message
    assert isinstance(caught.value.__cause__, MagicCommentError)

    (tmp_path / "magic.ts").write_text("// @timeout soon\nreturn 1;\n")
    for _ in range(2):  # the remembered failure keeps its cause too
        with pytest.raises(CompileError) as caught:
            compiler.compile_file(tmp_path, "magic.ts")
        assert isinstance(caught.value.__cause__, MagicCommentError)


def test_unknown_extension_is_rejected(compiler: Compiler) -> None:
    with pytest.raises(CompileError):
        compiler.compile_source("return 1;", "script.py")


def test_runtime_error_maps_to_the_original_position(compiler: Compiler, tmp_path: Path) -> None:
    source = """// @description throws
import {
  join,
} from 'path';
interface Unused { a: number }

const path = join('x', 'y');
    throw new Error('boom at ' + path);
"""
    artefact = compiler.compile_source(source, "throws.ts")
    out = run(artefact, tmp_path)
    assert out["error"] == "boom at x/y"
    frame = next(line for line in out["stack"].splitlines() if "throws.ts:" in line)
    line, col = (int(n) for n in frame.rsplit("throws.ts:", 1)[1].rstrip(")").split(":"))
    assert artefact.locate(line, col) == (8, 11)  # node points at `new Error`


def test_locate_in_module_shape_and_outside_the_map(compiler: Compiler) -> None:
    artefact = compiler.compile_source(
        "export default function (req: unknown) {\n  const x: number = 1;\n  return x;\n}\n", "m.ts")
    js = artefact.bytecode.decode().splitlines()
    line = next(i for i, text in enumerate(js, start=1) if "return x" in text)
    assert artefact.locate(line, js[line - 1].index("return") + 1) == (3, 3)
    assert artefact.locate(1, 1) is None
    assert artefact.locate(10_000, 1) is None


def test_bytecode_errors_are_mapped_to_the_original(tmp_path: Path, esbuild: Path) -> None:
    def rejecting(js: str, filename: str) -> bytes:
        lines = js.splitlines()
        at = next(i for i, text in enumerate(lines, start=1) if "marker" in text)
        raise CompileError("SyntaxError: no", filename, at, lines[at - 1].index("marker") + 1)

    compiler = Compiler(tmp_path, "engine", rejecting, esbuild=esbuild)
    with pytest.raises(CompileError) as caught:
        compiler.compile_source("// c\n\nconst a = 1;\nconst marker = a;\nreturn marker;\n", "b.ts")
    assert (caught.value.path, caught.value.line, caught.value.col) == ("b.ts", 4, 7)


def test_vlq_decoding() -> None:
    assert decode_vlq("AAAA") == [0, 0, 0, 0]
    assert decode_vlq("gB") == [16]
    assert decode_vlq("D") == [-1]
    assert decode_vlq("2HwciB") == [123, 456, 17]


def test_second_compile_skips_esbuild_and_bytecode(
    compiler: Compiler, fake: FakeBytecode, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    esbuild: Path,
) -> None:
    source = "// @timeout 10\nreturn 1;\n"
    first = compiler.compile_source(source, "a.ts")
    transpiles = []
    real = compiler_module.transpile
    monkeypatch.setattr(compiler_module, "transpile",
                        lambda *a, **k: transpiles.append(a) or real(*a, **k))
    second = compiler.compile_source(source, "a.ts")
    assert (transpiles, fake.calls) == ([], 1)
    assert second.key == first.key and second.bytecode == first.bytecode
    assert second.magic.timeout == 10

    restarted = Compiler(tmp_path / "cache", "engine-a", fake, esbuild=esbuild)
    assert restarted.compile_source(source, "a.ts").key == first.key
    assert (transpiles, fake.calls) == ([], 1)

    rebuilt = Compiler(tmp_path / "cache", "engine-b", fake, esbuild=esbuild)
    assert rebuilt.compile_source(source, "a.ts").key != first.key
    assert (len(transpiles), fake.calls) == (1, 2)


def test_key_depends_on_source_and_path(compiler: Compiler) -> None:
    a = compiler.compile_source("return 1;\n", "a.ts")
    assert compiler.compile_source("return 2;\n", "a.ts").key != a.key
    assert compiler.compile_source("return 1;\n", "b.ts").key != a.key


def test_compile_file_remembers_unchanged_files(compiler: Compiler, fake: FakeBytecode,
                                                tmp_path: Path) -> None:
    root = tmp_path / "scripts"
    (root / "api").mkdir(parents=True)
    file = root / "api" / "x.ts"
    file.write_text("return 1;\n")
    first = compiler.compile_file(root, "api/x.ts")
    assert first.path == "api/x.ts"
    assert compiler.compile_file(root, "api/x.ts") is first

    file.write_text("return 22;\n")
    second = compiler.compile_file(root, "api/x.ts")
    assert second.key != first.key and fake.calls == 2

    compiler.invalidate(root, "api/x.ts")
    assert compiler.compile_file(root, "api/x.ts") is not second
    assert fake.calls == 2

    with pytest.raises(ValueError):
        compiler.compile_file(root, "../outside.ts")


def test_compile_file_remembers_failures(compiler: Compiler, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    (tmp_path / "bad.ts").write_text("const = ;\n")
    with pytest.raises(CompileError):
        compiler.compile_file(tmp_path, "bad.ts")
    monkeypatch.setattr(compiler_module, "transpile", lambda *a, **k: pytest.fail("recompiled"))
    with pytest.raises(CompileError) as caught:
        compiler.compile_file(tmp_path, "bad.ts")
    assert caught.value.path == "bad.ts" and caught.value.line == 1


def test_clear_drops_the_disk_cache(compiler: Compiler, fake: FakeBytecode) -> None:
    compiler.compile_source("return 1;\n", "a.ts")
    compiler.clear()
    compiler.compile_source("return 1;\n", "a.ts")
    assert fake.calls == 2


def test_concurrent_compiles_of_one_source_build_once(compiler: Compiler, fake: FakeBytecode) -> None:
    results: list[str] = []
    barrier = threading.Barrier(8)

    def work() -> None:
        barrier.wait()
        results.append(compiler.compile_source("return 'same';\n", "same.ts").key)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and len(results) == 8
    assert fake.calls == 1


def test_env_comes_from_magic_comments(compiler: Compiler) -> None:
    artefact = compiler.compile_source("// @env A=1\n// @env B=two\nreturn process.env.A;\n", "e.ts")
    assert artefact.env == {"A": "1", "B": "two"}
    assert "two" not in repr(artefact)
