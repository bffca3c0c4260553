"""npm packages in a script's artefact: what a script loads from its tenant's `node_modules`
(and `sdk/<id>`, the tenant's imported SDK clients), bundled by esbuild at compile time.

The sandbox has no file system to load modules from at run time, so everything a script may
`require` must be inside its bytecode. A script's own code is transpiled file by file as before;
the packages it names are bundled apart, in one esbuild run per script, into a function
declaration appended after the script (`factory`), so the script's lines and source map are
unchanged. The bundle sees the browser's view of each package (`browser` fields and export
conditions): the sandbox has the Web platform's globals and only a few Node built-ins, and a
package that needs another built-in is a compile error naming it. Every file the bundle reads
must resolve inside the tenant's folder, so a `node_modules` link cannot read another tenant.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import CompileError
from .scan import imports

BUILTIN_MODULES = ("buffer", "crypto", "process", "timers", "url", "util")
"""What `require` gives a script (guest/prelude/lib/node.js's `builtins`; a test keeps these in
step), also under `node:`."""

NODE_BUILTINS = frozenset((
    "assert", "assert/strict", "async_hooks", "buffer", "child_process", "cluster", "console",
    "constants", "crypto", "dgram", "diagnostics_channel", "dns", "dns/promises", "domain",
    "events", "fs", "fs/promises", "http", "http2", "https", "inspector", "module", "net", "os",
    "path", "path/posix", "path/win32", "perf_hooks", "process", "punycode", "querystring",
    "readline", "repl", "stream", "stream/consumers", "stream/promises", "stream/web",
    "string_decoder", "sys", "timers", "timers/promises", "tls", "trace_events", "tty", "url",
    "util", "util/types", "v8", "vm", "wasi", "worker_threads", "zlib",
))
"""Node 20's built-in modules: a package may name them; the sandbox has `BUILTIN_MODULES`."""

SDK_FOLDER = ".sdk"
"""Where `sdk/import` keeps a tenant's generated clients: `require('sdk/<id>')` is
`<tenant>/.sdk/<id>.ts` (hidden, so never a route)."""

ENTRY = "__wexec_packages"
FACTORY_HOOK = f"require = {ENTRY}(require);"
"""Put on the factory's first line (no line added): the script's `require` looks in the bundle
first, then at the built-in modules."""

_RUNTIME = """\
function %s(require) {
var module = { exports: {} }, exports = module.exports;
%s
var table = module.exports, loaded = {};
return function (name) {
  var key = String(name);
  if (!Object.prototype.hasOwnProperty.call(table, key)) return require(name);
  if (!Object.prototype.hasOwnProperty.call(loaded, key)) loaded[key] = table[key]();
  return loaded[key];
};
}"""


def package_of(specifier: str) -> str | None:
    """The npm package a specifier loads (`lodash/fp` → `lodash`, `@scope/x/y` → `@scope/x`),
    None for a relative or absolute path and for Node's built-in modules."""
    if specifier.startswith((".", "/")) or not specifier:
        return None
    bare = specifier.removeprefix("node:")
    if specifier.startswith("node:") or bare in NODE_BUILTINS:
        return None
    names = specifier.split("/")
    return "/".join(names[:2]) if specifier.startswith("@") else names[0]


def sdk_of(specifier: str) -> str | None:
    """The SDK id of `sdk/<id>`, else None."""
    names = specifier.split("/")
    return names[1] if len(names) == 2 and names[0] == "sdk" and names[1] else None


def installed(root: Path, package: str) -> dict[str, object] | None:
    """The package.json of `package` in the tenant's node_modules, if it is there (inside the
    tenant's folder) and readable."""
    file = root / "node_modules" / package / "package.json"
    if not _inside(root, file):
        return None
    try:
        manifest = json.loads(file.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def packages_stamp(root: Path) -> tuple[int, ...]:
    """What changes when the tenant's installed packages or SDKs do, in two stats: an install
    made by another server process is noticed by this one's catalog and compile cache."""
    stamp: list[int] = []
    for path in (root / "node_modules" / ".package-lock.json", root / SDK_FOLDER):
        try:
            st = path.stat()
            stamp += [st.st_mtime_ns, st.st_size]
        except OSError:
            stamp += [0, 0]
    return tuple(stamp)


@dataclass(frozen=True)
class Wanted:
    """What one script would bundle: specifier → the path esbuild resolves for it."""

    targets: dict[str, str]
    fingerprint: str
    """Hash of the installed tree and the SDK files named: part of the artefact's cache key,
    so an install, an upgrade or a re-imported SDK recompiles the script."""


def wanted(root: Path | None, source: str) -> Wanted | None:
    """The specifiers of `source` that resolve in the tenant's folder, or None (nothing to
    bundle; a missing package stays a `Cannot find module` at run time, where a `try` may
    catch it)."""
    if root is None:
        return None
    targets: dict[str, str] = {}
    digest = hashlib.sha256()
    for found in imports(source):
        spec = found.name
        if spec in targets:
            continue
        sdk = sdk_of(spec)
        if sdk is not None:
            file = root / SDK_FOLDER / f"{sdk}.ts"
            if _inside(root, file) and file.is_file():
                targets[spec] = f"./{SDK_FOLDER}/{sdk}.ts"
                digest.update(spec.encode() + b"\0" + file.read_bytes() + b"\0")
            continue
        package = package_of(spec)
        if package is None or installed(root, package) is None:
            continue
        targets[spec] = spec
        digest.update(spec.encode() + b"\0" + _read(root / "node_modules" / package / "package.json"))
    if not targets:
        return None
    digest.update(_read(root / "node_modules" / ".package-lock.json"))
    return Wanted(targets, digest.hexdigest())


def bundle(esbuild: Path, root: Path, want: Wanted) -> str:
    """The function declaration `FACTORY_HOOK` calls: every wanted module, bundled.

    Raises CompileError naming the package when one cannot be bundled: a built-in module the
    sandbox lacks, a file outside the tenant, or esbuild's own error.
    """
    entry = "module.exports = {\n" + "".join(
        f"  {json.dumps(spec)}: () => require({json.dumps(target)}),\n"
        for spec, target in want.targets.items()) + "};\n"
    externals = [f"--external:{name}" for name in sorted(NODE_BUILTINS)] + ["--external:node:*"]
    env = {k: v for k, v in os.environ.items() if k != "NODE_PATH"}
    with tempfile.TemporaryDirectory(prefix="wexec-bundle-") as tmp:
        out, meta = Path(tmp) / "out.js", Path(tmp) / "meta.json"
        done = subprocess.run(
            [str(esbuild), "--bundle", "--format=cjs", "--platform=browser", "--target=es2023",
             "--charset=utf8", "--log-level=error", "--color=false", "--log-limit=1",
             "--define:process.env.NODE_ENV=\"production\"", "--define:global=globalThis",
             "--sourcefile=<packages>", *externals, f"--outfile={out}", f"--metafile={meta}"],
            input=entry.encode(), capture_output=True, cwd=root, env=env, check=False,
        )
        if done.returncode != 0:
            raise CompileError(f"bundling {', '.join(want.targets)} failed: "
                               f"{_reason(done.stderr.decode('utf-8', 'replace'))}")
        inputs = json.loads(meta.read_text("utf-8"))["inputs"]
        _check(root, inputs)
        return _RUNTIME % (ENTRY, out.read_text("utf-8"))


def missing_builtins(inputs: dict[str, dict[str, list[dict[str, object]]]]
                     ) -> dict[str, set[str]]:
    """Per package, the Node built-in modules its files load that the sandbox does not have."""
    lacking: dict[str, set[str]] = {}
    for name, info in inputs.items():
        for imported in info.get("imports", []):
            path = str(imported.get("path", ""))
            if imported.get("external") and path.removeprefix("node:") not in BUILTIN_MODULES:
                lacking.setdefault(_owner(name), set()).add(path.removeprefix("node:"))
    return lacking


def _check(root: Path, inputs: dict[str, dict[str, list[dict[str, object]]]]) -> None:
    for name in inputs:
        if not name.startswith("<") and not _inside(root, root / name):
            raise CompileError(f"{_owner(name)} reads {name}, outside the tenant's folder; "
                               "packages must be installed into it, not linked from elsewhere")
    lacking = missing_builtins(inputs)
    if lacking:
        raise CompileError("; ".join(
            f"package {package} needs Node built-in module{'s' if len(mods) > 1 else ''} "
            f"{', '.join(sorted(mods))}, which the sandbox does not have (it has "
            f"{', '.join(BUILTIN_MODULES)})" for package, mods in sorted(lacking.items())))


def _reason(stderr: str) -> str:
    """esbuild's first error and where it is, on one line."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    message = next((ln.split("[ERROR]", 1)[1].strip() for ln in lines if "[ERROR]" in ln),
                   " ".join(lines[:1]) or "esbuild failed")
    where = next((ln.rstrip(":") for ln in lines if ln.endswith(":") and ":" in ln[:-1]), None)
    return f"{message} (in {where})" if where else message


def _owner(input_path: str) -> str:
    """The package an esbuild input belongs to (`node_modules/@a/b/x.js` → `@a/b`)."""
    names = input_path.split("/")
    if "node_modules" in names:
        at = len(names) - 1 - names[::-1].index("node_modules")
        rest = names[at + 1:]
        return "/".join(rest[:2]) if rest and rest[0].startswith("@") else rest[0]
    if names[0] == SDK_FOLDER:
        return "sdk/" + names[-1].rsplit(".", 1)[0]
    return input_path


def _inside(root: Path, path: Path) -> bool:
    real_root = os.path.realpath(root)
    return os.path.realpath(path).startswith(real_root + os.sep)


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError:
        return b""
