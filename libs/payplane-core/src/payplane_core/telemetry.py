"""OpenTelemetry for every process, configured only by the standard ``OTEL_*`` variables.

``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``…_TRACES_ENDPOINT``) unset, or ``OTEL_SDK_DISABLED=true``:
no SDK, no instrumentation, no export and no cost. Set: the SDK with a batching OTLP/HTTP
exporter (endpoint, headers, timeout, sampler, resource and propagators all read from the
standard variables by the SDK itself), FastAPI's own server spans and the official
instrumentations of httpx, asyncpg, redis and aio-pika.

Trace context crosses the outbox row and RabbitMQ as W3C headers written and read by the
standard propagators (``OTEL_PROPAGATORS``, default tracecontext + baggage).
"""

import logging
import os
from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context

log = logging.getLogger(__name__)

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# Probes and scrapes are not part of any payment's story.
EXCLUDED_PATHS = frozenset({"/health", "/ready", "/metrics"})

_provider = None


def tracing_configured() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(name) for name in _ENDPOINTS)


def setup_tracing(service_name: str, exporter=None) -> bool:
    """Once per process. ``exporter`` (tests) forces tracing on with that exporter."""
    global _provider
    if _provider is not None:
        return True
    if exporter is None and not tracing_configured():
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    # OTEL_SERVICE_NAME, when set, wins over this default (Resource.create applies it last).
    resource = Resource.create({SERVICE_NAME: service_name})
    _provider = TracerProvider(resource=resource)
    _provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(_provider)
    _instrument_libraries()
    log.info("tracing on", extra={"otel_service": resource.attributes.get(SERVICE_NAME)})
    return True


def _queries_in_recorded_traces_only():
    """The official asyncpg instrumentation, except that a query outside a recording span runs
    untouched: no attributes built, no span started. Such a query is either in a sampled-out
    trace (its span would be dropped anyway) or in no trace at all (a worker's poll, a
    retention sweep: no payment's story, yet a root trace of its own every poll)."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    def only_when_recording(wrapper):
        async def wrapped(self, func, instance, args, kwargs):
            if not trace.get_current_span().is_recording():
                return await func(*args, **kwargs)
            return await wrapper(self, func, instance, args, kwargs)

        return wrapped

    class Instrumentor(AsyncPGInstrumentor):
        _do_execute = only_when_recording(AsyncPGInstrumentor._do_execute)
        _do_cursor_execute = only_when_recording(AsyncPGInstrumentor._do_cursor_execute)
        _do_prepared_execute = only_when_recording(AsyncPGInstrumentor._do_prepared_execute)

    return Instrumentor()


def _instrument_libraries() -> None:
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    for instrumentor in (
        HTTPXClientInstrumentor(),
        _queries_in_recorded_traces_only(),
        RedisInstrumentor(),
        AioPikaInstrumentor(),
    ):
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


def _excluded(scope) -> bool:
    return scope.get("path") in EXCLUDED_PATHS


# Server spans from FastAPI's own OpenTelemetry support (``FastAPI(telemetry=...)``): on once
# ``setup_tracing`` has set a tracer provider, a no-op without one. Leaner per request than the
# contrib ASGI middleware (which built its semantic-convention attributes and matched every
# route again for the span name, sampled or not). Only the request span: no spans for
# dependencies and serialisation, no OpenTelemetry metrics (Prometheus has ours) or logs.
FASTAPI_TELEMETRY = {
    "tracing": True,
    "operation_spans": False,
    "metrics": False,
    "logs": False,
    "exclude": _excluded,
}


def parent_context(carrier: Mapping[str, str] | None) -> Context | None:
    """The context to continue: the current span if there is one, else the one in ``carrier``
    (a stored outbox row, a delivery row, message headers). ``None`` means "current"."""
    if trace.get_current_span().get_span_context().is_valid:
        return None
    return propagate.extract(dict(carrier or {}))


def carrier(incoming: Mapping[str, str] | None = None) -> dict[str, str]:
    """W3C headers to store with an event or send on: the current span's; in a process that
    does not trace, the caller's own, so a trace passes through an untraced hop unbroken."""
    headers: dict[str, str] = {}
    propagate.inject(headers, context=parent_context(incoming))
    return headers


def current_ids() -> tuple[str, str]:
    """(trace_id, span_id) in hex for log lines; empty strings outside a trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return "", ""
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def exemplar() -> dict[str, str] | None:
    """The current trace id as a histogram exemplar (links a latency bucket to its trace)."""
    trace_id, _ = current_ids()
    return {"trace_id": trace_id} if trace_id else None
