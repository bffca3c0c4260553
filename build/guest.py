"""Build the guest engine: QuickJS-NG + ada + guest/shim.c (with shim/, abi.h) + the prelude as one wasm32-wasi reactor.

The build is reproducible from pinned inputs (the QuickJS-NG and ada sdists, checked by hash,
the ziglang toolchain from pyproject, the flags below) and cached by a hash of all of them, so
every checkout sharing a cache directory reuses one engine. The result is not snapshotted:
that is build/snapshot.py's job.

Usable as a script: ``python build/guest.py [cache_dir]`` builds and prints the path.
The host loads this file by path, so it depends on the standard library only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import NamedTuple


class Sdist(NamedTuple):
    """A source distribution on PyPI that ships C/C++ sources the guest is built from."""

    project: str  # as pip names it
    version: str
    sha256: str  # of the .tar.gz: a re-uploaded or tampered archive fails the build
    folder: str  # the archive's folder whose files the build uses
    marker: str  # a file of that folder, present once it is unpacked


QUICKJS_NG = Sdist(
    "quickjs-ng", "0.17.0.2", "43d2e48272208721a7aaea8e3f02d4b9318f12ef20cc4f5421b59d9a470706ef",
    "upstream-quickjs", "quickjs.c",
)
# ada, the WHATWG URL parser Node uses (Apache-2.0 / MIT): the ada-url sdist carries its
# amalgamated sources (ada.cpp, ada.h, ada_c.h), the same version as ADA_VERSION in ada.h.
ADA = Sdist(
    "ada-url", "4.0.0", "9f399ec867349800a4c2d3aa8df8c533c340494b04d34b1f082b97d9a8b76a07",
    "ada_url", "ada.cpp",
)
ZIGLANG_VERSION = "0.17.1"

QUICKJS_SOURCES = ("libregexp.c", "libunicode.c", "dtoa.c")  # quickjs.c is included by the shim
CFLAGS = ("--target=wasm32-wasi", "-O2", "-std=gnu11", "-D_GNU_SOURCE", "-DNDEBUG")
# ada reports errors as values, so it builds without exceptions (or RTTI); URLPattern is left
# out: it needs a regular-expression engine, which ada would take from std::regex.
ADA_CXXFLAGS = (
    "--target=wasm32-wasi", "-O2", "-std=c++20", "-fno-exceptions", "-fno-rtti", "-DNDEBUG",
    "-DADA_INCLUDE_URL_PATTERN=0",
)
LDFLAGS = ("-mexec-model=reactor", "-Wl,-z,stack-size=1048576", "-s", "-lc++")

# Edits to quickjs.c, applied at build time: (anchor, replacement, how many times it occurs).
# Refcounts live in each allocation's 8-byte header here; a count at or above JS_RC_IMMORTAL
# marks a block of the snapshot (see freeze_heap in guest/shim.c), whose count is then never
# written again: every instance shares those pages copy-on-write, and a refcount store would
# copy a page per object touched. Only stores that initialise a count write it directly. The
# includer may name the sink (JS_RC_SINK), to put it on a page it writes anyway.
IMMORTAL_REF_COUNT = """\
#define JS_RC_IMMORTAL (1 << 30)
#ifndef JS_RC_SINK
static int js_rc_sink; /* where counts of immortal blocks go */
#define JS_RC_SINK js_rc_sink
#endif
static inline int *js_rc_slot(JSMallocBlockHeader *b)
{
    if (unlikely(b->ref_count >= JS_RC_IMMORTAL)) {
        JS_RC_SINK = JS_RC_IMMORTAL;
        return &JS_RC_SINK;
    }
    return &b->ref_count;
}
#define JS_REF_COUNT(p) (*js_rc_slot(js_rc(p)))
"""
# JSON numbers that are integers of up to 15 digits are exact in a double: they skip strtod,
# whose frame (9 KiB of shadow stack) made every header parse write a stack page of its own.
JSON_INTEGER = """\
static double json_number_value(const uint8_t *p, const uint8_t *end)
{
    const uint8_t *q = p + (*p == '-' || *p == '+');
    if (end - q <= 15) {
        uint64_t n = 0;
        while (q < end && is_digit(*q))
            n = n * 10 + (uint64_t)(*q++ - '0');
        if (q == end)
            return *p == '-' ? -(double)n : (double)n;
    }
    return strtod((const char *)p, NULL);
}

static int json_parse_number(JSParseState *s, const uint8_t **pp)
"""
# While JS_SHAPE_PIN is 1 (the includer's to define), every new shape gets a reference nobody
# releases: an object growing property by property then leaves each step's shape behind, where a
# later object growing the same way finds it instead of making and rehashing a shape per step.
SHAPE_PIN = """\
#ifndef JS_SHAPE_PIN
#define JS_SHAPE_PIN 0
#endif
static inline JSShape *js_new_shape_nohash("""
# Scripts read the clock through Date and performance.now; JS_CLOCK_READ (the includer's to
# define) sees each read, so a script's top level that read it is never baked into an image.
CLOCK_READ = """\
#ifndef JS_CLOCK_READ
#define JS_CLOCK_READ() ((void)0)
#endif
static int64_t date_now(void) {
    JS_CLOCK_READ();
"""
# Async context, as V8's continuation-preserved embedder data (what Node's AsyncLocalStorage
# rests on): the runtime holds one value, the context of the code running now. A job carries
# the context current when it was queued, a promise reaction the one current when it was
# registered (then, await), and each runs in its own, whoever settled the promise. The guest
# keeps the request a continuation belongs to there (ABI.md). A job that raises leaves its
# context current, so the caller handles the exception in the context that raised it. A
# FinalizationRegistry callback runs in none: the collector, not a request, decides when.
ASYNC_CONTEXT_PATCHES = (
    (
        "    struct list_head job_list; /* list of JSJobEntry.link */\n",
        (
            "    struct list_head job_list; /* list of JSJobEntry.link */\n"
            "    JSValue async_context; /* of the code running now */\n"
        ),
        1,
    ),
    (
        "    init_list_head(&rt->job_list);\n\n    if (JS_InitAtoms(rt))",
        (
            "    init_list_head(&rt->job_list);\n    rt->async_context = JS_UNDEFINED;\n\n"
            "    if (JS_InitAtoms(rt))"
        ),
        1,
    ),
    (
        "    JS_FreeValueRT(rt, rt->current_exception);\n",
        (
            "    JS_FreeValueRT(rt, rt->current_exception);\n"
            "    JS_FreeValueRT(rt, rt->async_context);\n"
        ),
        1,
    ),
    (
        "typedef struct JSJobEntry {\n    struct list_head link;\n",
        (
            "typedef struct JSJobEntry {\n    struct list_head link;\n"
            "    JSValue async_context; /* current while the job runs */\n"
        ),
        1,
    ),
    (
        "    e->job_func = job_func;\n",
        "    e->job_func = job_func;\n    e->async_context = js_dup(rt->async_context);\n",
        1,
    ),
    (
        (
            "    res = e->job_func(e->ctx, e->argc, vc(e->argv));\n"
            "    for(i = 0; i < e->argc; i++)\n"
            "        JS_FreeValue(ctx, e->argv[i]);\n"
            "    if (JS_IsException(res))\n"
            "        ret = -1;\n"
            "    else\n"
            "        ret = 1;\n"
        ),
        (
            "    JSValue outer = rt->async_context;\n"
            "    rt->async_context = e->async_context;\n"
            "    res = e->job_func(e->ctx, e->argc, vc(e->argv));\n"
            "    for(i = 0; i < e->argc; i++)\n"
            "        JS_FreeValue(ctx, e->argv[i]);\n"
            "    if (JS_IsException(res)) {\n"
            "        JS_FreeValue(ctx, outer);\n"
            "        ret = -1;\n"
            "    } else {\n"
            "        JS_FreeValue(ctx, rt->async_context);\n"
            "        rt->async_context = outer;\n"
            "        ret = 1;\n"
            "    }\n"
        ),
        1,
    ),
    (
        "            JS_FreeValueRT(rt, e->argv[i]);\n",
        "            JS_FreeValueRT(rt, e->argv[i]);\n        JS_FreeValueRT(rt, e->async_context);\n",
        1,
    ),
    (
        "    JSValue resolving_funcs[2];\n    JSValue handler;\n} JSPromiseReactionData;",
        (
            "    JSValue resolving_funcs[2];\n    JSValue handler;\n"
            "    JSValue async_context; /* current when the reaction was registered */\n"
            "} JSPromiseReactionData;"
        ),
        1,
    ),
    (
        "    JS_FreeValueRT(rt, rd->handler);\n",
        "    JS_FreeValueRT(rt, rd->handler);\n    JS_FreeValueRT(rt, rd->async_context);\n",
        1,
    ),
    (
        "            JS_MarkValue(rt, rd->handler, mark_func);\n",
        (
            "            JS_MarkValue(rt, rd->handler, mark_func);\n"
            "            JS_MarkValue(rt, rd->async_context, mark_func);\n"
        ),
        1,
    ),
    (
        "        rd->handler = js_dup(handler);\n",
        (
            "        rd->handler = js_dup(handler);\n"
            "        rd->async_context = js_dup(ctx->rt->async_context);\n"
        ),
        1,
    ),
    (
        "        args[4] = value;\n        JS_EnqueueJob(ctx, promise_reaction_job, 5, args);\n",
        (
            "        args[4] = value;\n"
            "        {\n"
            "            JSValue settler = ctx->rt->async_context;\n"
            "            ctx->rt->async_context = rd->async_context;\n"
            "            JS_EnqueueJob(ctx, promise_reaction_job, 5, args);\n"
            "            ctx->rt->async_context = settler;\n"
            "        }\n"
        ),
        1,
    ),
    (
        "                JS_EnqueueJob(fre->ctx, js_finrec_job, 2, args);\n",
        (
            "                JSValue collector = rt->async_context;\n"
            "                rt->async_context = JS_UNDEFINED;\n"
            "                JS_EnqueueJob(fre->ctx, js_finrec_job, 2, args);\n"
            "                rt->async_context = collector;\n"
        ),
        1,
    ),
)
# While JS_KEEP_SOURCE is 0 (the includer's to define), the parser keeps no copy of a function's
# source for Function.prototype.toString: each nested function keeps its own slice otherwise, over
# 1 MiB of the snapshot for the prelude, whose functions then print as [native code].
KEEP_SOURCE = """\
#ifndef JS_KEEP_SOURCE
#define JS_KEEP_SOURCE 1
#endif
static inline JSShape *js_new_shape_nohash("""
def _keep_source_patch(pad: str, dest: str, start: str) -> tuple[str, str, int]:
    """The patch of one place where the parser copies a function's source (see KEEP_SOURCE)."""
    copy = f"js_strndup(ctx, (const char *){start}, {dest}_len)"
    return (
        f"{pad}{dest} = {copy};\n{pad}if (!{dest})\n",
        f"{pad}{dest} = JS_KEEP_SOURCE ? {copy} : NULL;\n{pad}if (!{dest} && JS_KEEP_SOURCE)\n",
        1,
    )


KEEP_SOURCE_PATCHES = (
    _keep_source_patch("            ", "fd->source", "ptr"),  # a function
    _keep_source_patch("        ", "fd->source", "ptr"),  # an arrow function
    _keep_source_patch("    ", "ctor_fd->source", "class_start_ptr"),  # a class
)
QUICKJS_PATCHES = (
    ("#define JS_REF_COUNT(p) (js_rc(p)->ref_count)\n", IMMORTAL_REF_COUNT, 1),
    ("static int64_t date_now(void) {\n", CLOCK_READ, 1),
    (
        "static double js__now_ms(void)\n{\n",
        "static double js__now_ms(void)\n{\n    JS_CLOCK_READ();\n",
        1,
    ),
    ("static inline JSShape *js_new_shape_nohash(", SHAPE_PIN, 1),
    ("static inline JSShape *js_new_shape_nohash(", KEEP_SOURCE, 1),
    (
        "    JS_REF_COUNT(sh) = 1;\n    add_gc_object(rt, &sh->header, JS_GC_OBJ_TYPE_SHAPE);",
        "    JS_REF_COUNT(sh) = 1 + JS_SHAPE_PIN;\n    add_gc_object(rt, &sh->header, JS_GC_OBJ_TYPE_SHAPE);",
        1,
    ),
    (
        "    JS_REF_COUNT(sh) = 1;\n    add_gc_object(ctx->rt, &sh->header, JS_GC_OBJ_TYPE_SHAPE);",
        (
            "    JS_REF_COUNT(sh) = 1 + JS_SHAPE_PIN;\n"
            "    add_gc_object(ctx->rt, &sh->header, JS_GC_OBJ_TYPE_SHAPE);"
        ),
        1,
    ),
    ("static int json_parse_number(JSParseState *s, const uint8_t **pp)\n", JSON_INTEGER, 1),
    (
        "js_float64(strtod((const char *)p_start, NULL));",
        "js_float64(json_number_value(p_start, p));",
        1,
    ),
    *ASYNC_CONTEXT_PATCHES,
    *KEEP_SOURCE_PATCHES,
)
QUICKJS_RC_INIT = re.compile(r"JS_REF_COUNT\(([\w>-]+)\) = ")  # a count set on a new block

GUEST_DIR = Path(__file__).resolve().parent.parent / "guest"
GUEST_SOURCES = (".c", ".h", ".js")  # what the engine is built from; ABI.md is not
ENGINE_NAME = "engine.wasm"
PRELUDE_NAME = "prelude.js"  # the bundle, kept beside the engine: the file prelude frames name
# How guest/prelude/ becomes one script. Its modules share one closure, as the single-file prelude
# did; the script evaluates to a function of the shim's natives (natives.js reads them), which
# returns index.js's exports. The CommonJS format puts the modules straight in that function: an
# IIFE inside it would be a second function holding the whole source, which QuickJS keeps (for
# Function.prototype.toString) in the snapshot. Unminified, each module keeps a
# `// guest/prelude/<path>` marker, so a frame `prelude.js:<line>` leads to its module.
PRELUDE_BUNDLE = (
    "--bundle",
    "--format=cjs",
    "--target=es2023",
    "--charset=utf8",
    "--keep-names",  # scripts see Buffer.name, require.name as written, not as bundling renamed them
    "--log-level=warning",
    "--banner:js=(function (natives) {\n'use strict';\nconst module = {};",
    "--footer:js=return module.exports;\n})",
)


def guest_files() -> list[str]:
    """Every source file of the guest tree, as a path under it, in a stable order.

    Plain strings: the hash reads the tree at every start-up, where Path objects cost more than
    the reads."""
    root = len(str(GUEST_DIR)) + 1
    return sorted(
        os.path.join(folder, name)[root:]
        for folder, _, names in os.walk(GUEST_DIR)
        for name in names
        if name.endswith(GUEST_SOURCES)
    )


def guest_hash() -> str:
    """Hash of everything that determines the engine's bytes: sources, pins and flags."""
    h = hashlib.sha256()
    pins = (
        *QUICKJS_NG,
        *ADA,
        ZIGLANG_VERSION,
        *QUICKJS_SOURCES,
        *CFLAGS,
        *ADA_CXXFLAGS,
        *LDFLAGS,
    )
    h.update("\0".join((*pins, *PRELUDE_BUNDLE)).encode())
    for sibling in ("esbuild.py", "npm.py", "encodings.py"):  # the bundler's and packages' pins,
        h.update(Path(__file__).with_name(sibling).read_bytes())  # a generated module: unimported
    h.update(repr((QUICKJS_PATCHES, QUICKJS_RC_INIT.pattern)).encode())
    for name in guest_files():
        with open(os.path.join(GUEST_DIR, name), "rb") as f:
            data = f.read()
        h.update(f"\0{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:32]


def engine_path(cache_dir: Path) -> Path:
    """Where the engine of the current sources lives (built or not)."""
    return Path(cache_dir) / "guest" / guest_hash() / ENGINE_NAME


def build_guest(cache_dir: Path) -> Path:
    """Return the path of the engine for the current sources, building it if needed.

    Safe to run from several processes at once: every write goes to a temporary
    file that is renamed into place, so readers see a whole file or none.
    """
    cache_dir = Path(cache_dir)
    out = engine_path(cache_dir)
    if out.is_file():
        return out
    # Imported only to build: loading this file is on every server start.
    import tempfile

    src = _sdist_sources(cache_dir, QUICKJS_NG)
    shim = _shim_sources(cache_dir)
    ada = _ada_object(cache_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".build-") as tmp:
        work = Path(tmp)
        prelude = _bundle_prelude(cache_dir)
        (work / "prelude.c").write_text(_prelude_source(prelude))
        wasm = work / ENGINE_NAME
        zig_cc(
            cache_dir,
            [
                *CFLAGS,
                *LDFLAGS,
                f"-I{shim}",  # first: the patched quickjs.c, not the sdist's
                f"-I{src}",
                f"-I{ada.parent}",  # ada_c.h, for shim/url.c
                str(shim / "shim.c"),
                str(work / "prelude.c"),
                *(str(src / name) for name in QUICKJS_SOURCES),
                str(ada),
                "-o",
                str(wasm),
            ],
            cwd=work,
        )
        (work / PRELUDE_NAME).write_bytes(prelude)
        os.replace(work / PRELUDE_NAME, out.parent / PRELUDE_NAME)
        os.replace(wasm, out)
    prune_builds(out.parent.parent, keep=out.parent)
    return out


KEEP_BUILDS = 3
STALE_SECONDS = 7 * 24 * 3600


def prune_builds(root: Path, keep: Path) -> list[Path]:
    """Remove old engine builds (each ~10 MB with its snapshot and machine code) after a new one.

    ``keep`` and the ``KEEP_BUILDS`` most recently modified builds stay, as does any build
    modified in the last week (a checkout of another version may still be using it; a build
    that is removed is rebuilt when next needed). Returns what was removed.
    """
    import shutil
    import time

    builds = sorted(
        (d for d in Path(root).iterdir() if d.is_dir() and not d.name.startswith(".") and d != keep),
        key=lambda d: d.stat().st_mtime,
        reverse=True,
    )
    cutoff = time.time() - STALE_SECONDS
    removed = [d for d in builds[KEEP_BUILDS - 1 :] if d.stat().st_mtime < cutoff]
    for d in removed:
        shutil.rmtree(d, ignore_errors=True)
    return removed


def zig_cc(cache_dir: Path, args: list[str], cwd: Path, driver: str = "cc") -> None:
    """Run the pinned ``zig cc`` (also build/native.py's compiler), or ``zig c++`` for
    ``driver="c++"``; raises with its stderr."""
    import subprocess
    zig_cache = cache_dir / "zig"
    env = dict(os.environ, ZIG_GLOBAL_CACHE_DIR=str(zig_cache), ZIG_LOCAL_CACHE_DIR=str(zig_cache))
    proc = subprocess.run(
        [sys.executable, "-m", "ziglang", driver, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"zig {driver} {' '.join(args[-3:])} failed (exit {proc.returncode}):\n{proc.stderr[-8000:]}"
        )


def _patched_quickjs(text: str) -> str:
    """quickjs.c with QUICKJS_PATCHES applied; the shim includes it from the build folder."""
    for old, new, count in QUICKJS_PATCHES:
        found = text.count(old)
        if found != count:
            raise RuntimeError(
                f"quickjs.c: expected {count} occurrence(s) of {old.splitlines()[0]!r}, found "
                f"{found}; update QUICKJS_PATCHES for QuickJS-NG {QUICKJS_NG.version}"
            )
        text = text.replace(old, new)
    return QUICKJS_RC_INIT.sub(r"js_rc(\1)->ref_count = ", text)


def _sibling(stem: str) -> ModuleType:
    """build/<stem>.py (esbuild.py, the pinned bundler the compiler uses too; npm.py), by path."""
    name = f"wexec_build.{stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{stem}.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _bundle_prelude(cache_dir: Path) -> bytes:
    """guest/prelude/ bundled into the one script wx_init evaluates (see PRELUDE_BUNDLE)."""
    import subprocess
    import tempfile

    esbuild = _sibling("esbuild").ensure_esbuild(cache_dir)
    packages = _sibling("npm").node_modules(cache_dir)
    # esbuild runs in a folder of links, guest/ and node_modules/<package>, and keeps the links'
    # paths: each module's marker then reads guest/prelude/<path> or node_modules/<package>/<path>,
    # whatever the checkout's and the cache's locations, so the bundle is the same everywhere.
    # node_modules/ also holds the module build/encodings.py generates.
    encodings = _sibling("encodings")
    with tempfile.TemporaryDirectory(prefix="wexec-prelude-") as tmp:
        os.symlink(GUEST_DIR, os.path.join(tmp, "guest"))
        modules = Path(tmp) / "node_modules"
        modules.mkdir()
        for package in packages.iterdir():
            if package.name.startswith("@"):  # a scope: link its packages one by one
                (modules / package.name).mkdir()
                for scoped in package.iterdir():
                    os.symlink(scoped, modules / package.name / scoped.name)
            elif not package.name.startswith("."):
                os.symlink(package, modules / package.name)
        (modules / encodings.MODULE).write_text(encodings.module_source(packages), encoding="utf-8")
        proc = subprocess.run(
            [str(esbuild), "guest/prelude/index.js", "--preserve-symlinks", *PRELUDE_BUNDLE],
            cwd=tmp,
            capture_output=True,
            check=False,
        )
    entry = "guest/prelude/index.js"
    if proc.returncode != 0:
        raise RuntimeError(f"esbuild {entry} failed:\n{proc.stderr.decode(errors='replace')[-8000:]}")
    return proc.stdout


def _prelude_source(js: bytes) -> str:
    """The prelude as a C array, NUL-terminated because JS_Eval wants that."""
    rows = (", ".join(str(b) for b in js[i : i + 32]) for i in range(0, len(js), 32))
    body = ",\n".join(rows)
    return (
        "/* Generated by build/guest.py from guest/prelude/ (the bundle). */\n"
        "#include <stddef.h>\n"
        f"const char wx_prelude[] = {{\n{body},\n0}};\n"
        f"const size_t wx_prelude_len = {len(js)};\n"
    )


def _shim_sources(cache_dir: Path) -> Path:
    """The shim's C sources and the patched quickjs.c, in a folder named by their hash.

    A stable path with unchanged contents lets zig's cache keep the big translation unit's
    object, so a prelude edit rebuilds in seconds instead of recompiling QuickJS."""
    import shutil
    import tempfile

    quickjs = _patched_quickjs((_sdist_sources(cache_dir, QUICKJS_NG) / "quickjs.c").read_text())
    names = [name for name in guest_files() if not name.endswith(".js")]
    h = hashlib.sha256(quickjs.encode())
    for name in names:
        h.update(f"\0{name}\0".encode() + (GUEST_DIR / name).read_bytes())
    dest = cache_dir / "src" / f"shim-{h.hexdigest()[:24]}"
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=".shim-"))
    for name in names:
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(GUEST_DIR / name, tmp / name)
    (tmp / "quickjs.c").write_text(quickjs)
    try:
        os.rename(tmp, dest)
    except OSError:  # another process made it first: same contents
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _ada_object(cache_dir: Path) -> Path:
    """ada.cpp compiled once per cache (about 15 s), beside its sources, named by its flags.

    Kept as an object file rather than left to zig's cache, so no prelude or shim edit, nor a
    cleared zig cache, ever compiles ada again."""
    import tempfile

    src = _sdist_sources(cache_dir, ADA)
    key = hashlib.sha256("\0".join((ZIGLANG_VERSION, *ADA_CXXFLAGS)).encode()).hexdigest()[:16]
    obj = src / f"ada-{key}.o"
    if obj.is_file():
        return obj
    print(f"wexec: compiling ada {ADA.version} for the guest (once per cache, about a minute)", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=src, prefix=".build-") as tmp:
        staged = Path(tmp) / obj.name
        zig_cc(cache_dir, [*ADA_CXXFLAGS, "-c", str(src / "ada.cpp"), "-o", str(staged)], Path(tmp), "c++")
        os.replace(staged, obj)
    return obj


def _sdist_sources(cache_dir: Path, sdist: Sdist) -> Path:
    """The files directly in ``sdist.folder`` of a pinned sdist, downloaded and unpacked once per cache."""
    import subprocess
    import tarfile
    import tempfile

    dest = cache_dir / "src" / f"{sdist.project}-{sdist.version}"
    if (dest / sdist.marker).is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    print(f"wexec: downloading the {sdist.project} {sdist.version} sdist (PyPI)", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmp:
        work = Path(tmp)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-binary",
                ":all:",
                "--no-deps",
                "--disable-pip-version-check",
                "-q",
                f"{sdist.project}=={sdist.version}",
                "-d",
                str(work),
            ],
            check=True,
            capture_output=True,
        )
        stem = f"{sdist.project.replace('-', '_')}-{sdist.version}"
        archive = work / f"{stem}.tar.gz"
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if digest != sdist.sha256:
            raise RuntimeError(f"{archive.name} has sha256 {digest}, expected {sdist.sha256}")
        unpacked = work / sdist.folder
        unpacked.mkdir()
        prefix = f"{stem}/{sdist.folder}/"
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if (
                    member.isfile()
                    and member.name.startswith(prefix)
                    and "/" not in member.name[len(prefix) :]
                ):
                    data = tar.extractfile(member)
                    assert data is not None
                    (unpacked / member.name[len(prefix) :]).write_bytes(data.read())
        try:
            os.replace(unpacked, dest)
        except OSError:
            if not (dest / sdist.marker).is_file():  # another process won the race
                raise
    return dest


def _default_cache_dir() -> Path:
    env = os.environ.get("WEXEC_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "wexec"


if __name__ == "__main__":
    print(build_guest(Path(sys.argv[1]) if len(sys.argv) > 1 else _default_cache_dir()))
