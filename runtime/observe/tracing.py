"""Spans per invocation (OpenTelemetry), free when off.

An invocation is one span, `invoke <script>` (kind SERVER, the child of the `traceparent` the
request came with), with children for what it spent its time on: `sandbox` (the run),
`instantiate` (a new guest instance), `load` (a worker's top level), each host operation by its
name (`timers.sleep`, `fetch.request`, ...: `host.registry.Registry.run`), and `response`
(sending the answer). Compiling is not on the request path (the catalog compiles a script when
its file changes): each compile is a trace of its own, `compile <script>`.

`tracer` is None unless tracing is on, and every call site tests it first: with tracing off no
span, context or attribute object is made (measured in the README). Spans follow the asyncio
task that runs the request, through Python's context variables, as OpenTelemetry's context does.

`traceparent()` is the outbound half: the W3C header value naming the current span, for a
host unit that makes a request on a script's behalf (`fetch`) to send along.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Span, Tracer

T = TypeVar("T")
OTLP_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
SERVICE = "wexec"

log = logging.getLogger("wexec.tracing")

tracer: Tracer | None = None
"""The process's tracer while tracing is on; None otherwise (call sites test this)."""
memory: InMemorySpanExporter | None = None
"""Where spans go in `memory` mode (tests)."""
_provider: Any = None


def mode_for(setting: str) -> str:
    """The tracing mode: the setting, or `otlp` when it is `off` and an OTLP endpoint is set."""
    return "otlp" if setting == "off" and os.environ.get(OTLP_ENV) else setting


def configure(setting: str) -> None:
    """Turn tracing on for this process as `setting` asks (`off`, `otlp`, `memory`)."""
    global tracer, memory, _provider, _ROOT
    mode = mode_for(setting)
    if mode == "off":
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    if mode == "memory":
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(memory))
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            log.error("tracing is off: %s is set but the OTLP exporter is not installed; "
                      "pip install 'wexec[otlp]'", OTLP_ENV)
            return
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    from opentelemetry.context import Context

    _ROOT = Context()
    _provider = provider
    tracer = provider.get_tracer("wexec")


def shutdown() -> None:
    """Export what is pending and turn tracing off (the process's lifespan ends)."""
    global tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    tracer = _provider = None


def start_invocation(headers: Mapping[str, str], tenant: str, script: str, method: str) -> Any:
    """The invocation's span, made current (call only when `tracer` is set); pass what this
    returns to `end_invocation`."""
    from opentelemetry import context, trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    assert tracer is not None
    parent = TraceContextTextMapPropagator().extract(headers) if "traceparent" in headers else None
    span = tracer.start_span(
        f"invoke {script}", parent, trace.SpanKind.SERVER,
        {"wexec.tenant": tenant, "wexec.script": script, "http.request.method": method},
    )
    return span, context.attach(trace.set_span_in_context(span, parent))


def end_invocation(started: Any, status: int, error: str | None) -> None:
    from opentelemetry import context
    from opentelemetry.trace import Status, StatusCode

    span, token = started
    span.set_attribute("http.response.status_code", status)
    if error is not None or status >= 500:
        span.set_status(Status(StatusCode.ERROR, error))
    if token is not None:
        context.detach(token)
    span.end()


def leave_invocation(started: Any) -> Any:
    """The invocation's span no longer current here, though not ended: what an invocation
    whose end comes in another task (a streamed in-process answer) does before it returns.
    Pass what this returns to ``end_invocation``."""
    from opentelemetry import context

    span, token = started
    context.detach(token)
    return span, None


@contextmanager
def _span(name: str, attributes: Mapping[str, Any] | None) -> Iterator[Span]:
    assert tracer is not None
    with tracer.start_as_current_span(name, attributes=attributes) as current:
        yield current


def maybe(name: str, attributes: Mapping[str, Any] | None = None) -> AbstractContextManager[Any]:
    """A child span of the current one while tracing is on; otherwise a shared no-op context
    (nothing is made)."""
    return _OFF if tracer is None else _span(name, attributes)


_OFF = nullcontext()
_ROOT: Any = None
"""An empty context: a compile's span is a root, whatever called it."""


def traced_compile(compile_file: Callable[[Path, str], T]) -> Callable[[Path, str], T]:
    """`compile_file` with a trace of its own per compile (`compile <script>`) while tracing is
    on; the catalog calls it off the request path, whenever a script's file changes."""

    def compile_traced(root: Path, rel: str) -> T:
        if tracer is None:
            return compile_file(root, rel)
        with tracer.start_as_current_span(f"compile {rel}", context=_ROOT,
                                          attributes={"wexec.script": rel}):
            return compile_file(root, rel)

    return compile_traced


def traceparent() -> str | None:
    """The `traceparent` header naming the current span, for a request the host makes on the
    script's behalf; None when tracing is off or no span is current."""
    if tracer is None:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")
