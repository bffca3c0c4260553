"""Tracing: the span tree of an invocation served over real HTTP, exported to the SDK's
in-memory exporter; the outbound `traceparent`; and nothing of OpenTelemetry made when off."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from runtime.app import create_app
from runtime.observe import tracing
from tests.support import REPO, eventually, free_port, settings_for_tests, write_scripts

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
SCRIPTS = {
    # 800 KB streamed: past the 256 KiB a stream may run ahead, so it waits on response.drain
    "big.ts": "return (async function* () {\n"
              "  for (let i = 0; i < 8; i++) yield 'x'.repeat(100000);\n})();\n",
    "hello.ts": "return 'hello';\n",
    # composed: one answer made whole, one streamed, then a third fetch
    "compose.ts": "const a = await (await fetch('/hello')).text();\n"
                  "const b = (await (await fetch('/big')).text()).length;\n"
                  "const c = await (await fetch('/hello')).text();\n"
                  "return [a, b, c].join(' ');\n",
    "shared.ts": "// @mode worker\nexport default () => (async function* () {\n"
                 "  for (let i = 0; i < 8; i++) yield 'y'.repeat(100000);\n})();\n",
}


UPSTREAM_PORT = free_port()
SEEN: list[str | None] = []  # the traceparent each request to the upstream carried


async def _upstream(scope: dict, receive: object, send: object) -> None:
    """A plain ASGI upstream that records the `traceparent` a script's fetch sent it."""
    if scope["type"] != "http":
        return
    headers = dict(scope["headers"])
    SEEN.append(headers.get(b"traceparent", b"").decode() or None)
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"up"})  # type: ignore[operator]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("traced")
    write_scripts(root / "scripts", {
        **SCRIPTS,
        "calls.ts": f"return await (await fetch('http://127.0.0.1:{UPSTREAM_PORT}/')).text();\n",
    })
    upstream = uvicorn.Server(uvicorn.Config(_upstream, host="127.0.0.1", port=UPSTREAM_PORT,
                                             lifespan="off", log_level="warning"))
    threading.Thread(target=upstream.run, daemon=True).start()
    eventually(lambda: upstream.started, timeout_s=30)
    settings = settings_for_tests(scripts=root / "scripts", data=root / "data", tracing="memory",
                                  fetch_allow_hosts=f"127.0.0.1:{UPSTREAM_PORT}")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           lifespan="on", log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    eventually(lambda: server.started, timeout_s=120)
    try:
        yield url
    finally:
        server.should_exit = True
        upstream.should_exit = True
        thread.join(30)


def test_a_fetch_carries_the_trace_upstream(base: str) -> None:
    trace_id = "1" * 32  # a trace of its own: the other tests read TRACE_ID's
    r = httpx.get(f"{base}/calls", headers={"traceparent": f"00-{trace_id}-{PARENT_ID}-01"},
                  timeout=30)
    assert r.status_code == 200 and r.text == "up"
    (sent,) = SEEN[-1:]
    assert sent is not None and sent.split("-")[1] == trace_id
    op = [s for s in _spans() if f"{s.context.span_id:016x}" == sent.split("-")[2]]
    assert [s.name for s in op] == ["fetch.request"]  # the upstream's parent is the op's span


def _spans() -> list:
    assert tracing.memory is not None
    return list(tracing.memory.get_finished_spans())


def test_an_invocation_is_one_span_tree_under_the_inbound_traceparent(base: str) -> None:
    r = httpx.get(f"{base}/big", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
                  timeout=30)
    assert r.status_code == 200 and len(r.content) == 800_000

    def ours() -> list:
        return [s for s in _spans() if f"{s.context.trace_id:032x}" == TRACE_ID]

    eventually(lambda: any(s.name == "invoke big.ts" for s in ours()))
    spans = ours()
    by_id = {s.context.span_id: s for s in spans}
    (invoke,) = [s for s in spans if s.name == "invoke big.ts"]
    assert f"{invoke.parent.span_id:016x}" == PARENT_ID and invoke.kind.name == "SERVER"
    assert invoke.attributes["wexec.script"] == "big.ts"
    assert invoke.attributes["http.response.status_code"] == 200

    def parent_of(span: object) -> object:
        return by_id.get(span.parent.span_id) if span.parent else None  # type: ignore[attr-defined]

    def ancestors(span: object) -> list[str]:
        names = []
        while (span := parent_of(span)) is not None:
            names.append(span.name)  # type: ignore[attr-defined]
        return names

    children = sorted(s.name for s in spans if parent_of(s) is invoke)
    assert children == ["response", "sandbox"]
    assert [ancestors(s) for s in spans if s.name == "instantiate"] == [["sandbox", "invoke big.ts"]]
    drains = [s for s in spans if s.name == "response.drain"]
    assert drains, "the stream never waited for its client"
    assert all(ancestors(s)[-1] == "invoke big.ts" for s in drains)
    assert all(s.start_time >= invoke.start_time and s.end_time <= invoke.end_time for s in spans
               if s is not invoke)


def test_a_composed_invocation_is_a_child_of_its_fetch_and_leaves_the_callers_context(
    base: str, caplog: pytest.LogCaptureFixture,
) -> None:
    """Each in-process request is its own invocation span under the fetch.request op that
    made it, whether its answer came whole or streamed; none stays current in the caller, so
    the caller's later fetches are children of the caller alone, and a streamed one's span
    ends in the task that sends its body without OpenTelemetry refusing to detach it."""
    trace_id = "2" * 32
    r = httpx.get(f"{base}/compose", headers={"traceparent": f"00-{trace_id}-{PARENT_ID}-01"},
                  timeout=30)
    assert r.status_code == 200 and r.text == "hello 800000 hello"

    def ours() -> list:
        return [s for s in _spans() if f"{s.context.trace_id:032x}" == trace_id]

    eventually(lambda: sum(s.name.startswith("invoke ") for s in ours()) == 4)
    spans = ours()
    by_id = {s.context.span_id: s for s in spans}

    def chain(span: object) -> list[str]:
        names = []
        while span.parent is not None and (span := by_id.get(span.parent.span_id)) is not None:  # type: ignore[attr-defined]
            names.append(span.name)  # type: ignore[attr-defined]
        return names

    nested = sorted((s.name, chain(s)[:1]) for s in spans if s.name.startswith("invoke ")
                    and s.name != "invoke compose.ts")
    assert nested == [("invoke big.ts", ["fetch.request"]), ("invoke hello.ts", ["fetch.request"]),
                      ("invoke hello.ts", ["fetch.request"])]
    fetches = [chain(s) for s in spans if s.name == "fetch.request"]
    assert len(fetches) == 3
    assert all("invoke compose.ts" in c and not any(n in c for n in ("invoke hello.ts",
                                                                      "invoke big.ts"))
               for c in fetches)
    assert "Failed to detach context" not in caplog.text


def test_interleaved_worker_requests_keep_their_own_op_spans(base: str) -> None:
    """Requests of one worker instance wait on their host ops in turns; each op's span is in
    the trace of the request whose code started it, whichever request's op resumed the guest."""
    traces = [f"{n:032x}" for n in range(0xA1, 0xA5)]

    def fetch(trace: str) -> None:
        r = httpx.get(f"{base}/shared", headers={"traceparent": f"00-{trace}-{PARENT_ID}-01"},
                      timeout=30)
        assert len(r.content) == 800_000

    threads = [threading.Thread(target=fetch, args=(t,)) for t in traces]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    def done() -> bool:
        return sum(s.name == "invoke shared.ts" for s in _spans()) >= len(traces)

    eventually(done)
    for trace in traces:
        spans = [s for s in _spans() if f"{s.context.trace_id:032x}" == trace]
        by_id = {s.context.span_id: s.name for s in spans}
        drains = [s for s in spans if s.name == "response.drain"]
        assert drains, trace
        assert all(by_id.get(s.parent.span_id) == "sandbox" for s in drains)


def test_a_request_without_traceparent_starts_a_trace(base: str) -> None:
    before = {s.context.trace_id for s in _spans()}
    assert httpx.get(f"{base}/hello").text == "hello"
    eventually(lambda: any(s.name == "invoke hello.ts" and s.context.trace_id not in before
                           for s in _spans()))
    (invoke,) = [s for s in _spans() if s.name == "invoke hello.ts" and s.context.trace_id not in before]
    assert invoke.parent is None


def test_compiles_are_traces_of_their_own(base: str) -> None:
    compiles = [s for s in _spans() if s.name.startswith("compile ")]
    assert {s.name for s in compiles} >= {"compile big.ts", "compile hello.ts"}
    assert all(s.parent is None for s in compiles)


def test_traceparent_names_the_current_span() -> None:
    """What a host unit sending a request for a script (fetch) puts in its `traceparent`."""
    was = tracing.tracer
    if was is None:
        tracing.configure("memory")
    try:
        assert tracing.tracer is not None
        with tracing.maybe("fetch.request") as span:
            context = span.get_span_context()
            assert tracing.traceparent() == (
                f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
            )
    finally:
        if was is None:
            tracing.shutdown()


def test_tracing_off_makes_nothing_of_opentelemetry(tmp_path: Path) -> None:
    """With tracing off (the default), serving requests never loads OpenTelemetry's SDK, so no
    span of ours can have been made. (FastAPI loads the OpenTelemetry API for its own
    instrumentation when the package is installed; without a tracer provider set globally,
    which wexec never sets, that is a no-op.)"""
    write_scripts(tmp_path / "scripts", {"hello.ts": "return 'hello';\n"})
    probe = f"""
import asyncio, sys
import httpx
from runtime.app import create_app
from runtime.observe import tracing
from tests.support import Lifespan
from tests.support import settings_for_tests

async def main():
    app = create_app(settings_for_tests(scripts={str(tmp_path / 'scripts')!r},
                                        data={str(tmp_path / 'data')!r}))
    life = Lifespan(app)
    await life.start()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.get("/hello")).text == "hello"
        assert (await c.get("/api/v1/exec/health")).status_code == 200
    await life.stop()
    assert tracing.tracer is None
    print(sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk")))

asyncio.run(main())
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "WEXEC_TRACING"))}
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True,
                         timeout=120, env=env, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_an_otlp_endpoint_turns_tracing_on_and_a_missing_exporter_says_how_to_fix_it(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(tracing.OTLP_ENV, "http://127.0.0.1:4318")
    assert tracing.mode_for("off") == "otlp" and tracing.mode_for("memory") == "memory"
    monkeypatch.delenv(tracing.OTLP_ENV)
    assert tracing.mode_for("off") == "off"
    monkeypatch.setattr(tracing, "tracer", None)  # another test's server may have it on
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    tracing.configure("otlp")
    assert tracing.tracer is None
    assert "pip install 'wexec[otlp]'" in caplog.text
