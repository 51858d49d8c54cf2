"""OpenTelemetry for every process, configured only by the standard ``OTEL_*`` variables.

``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``…_TRACES_ENDPOINT``) unset, or ``OTEL_SDK_DISABLED=true``:
no SDK, no instrumentation, no export and no cost. Set: the SDK with a batching OTLP/HTTP
exporter (endpoint, headers, timeout, sampler, resource and propagators all read from the
standard variables by the SDK itself), FastAPI's own server spans and the official
instrumentations of httpx, asyncpg, redis and aio-pika.

Trace context crosses the outbox row and RabbitMQ as W3C headers written and read by the
standard propagators (``OTEL_PROPAGATORS``, default tracecontext + baggage).
"""

import functools
import logging
import os
from collections.abc import Mapping
from contextvars import ContextVar

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context

from payplane_core.context import first_values

log = logging.getLogger(__name__)

_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
# Probes and scrapes are not part of any payment's story.
EXCLUDED_PATHS = frozenset({"/health", "/ready", "/metrics"})

_provider = None
# A sampled-out request's context (its caller's, with a non-recording server span), for
# RequestContextMiddleware to make current while FastAPI's own telemetry stands aside.
SAMPLED_OUT = "payplane.sampled_out"
# A root request's trace id, chosen before its sampling was decided (``_sampled_out``).
_decided_trace_id: ContextVar[int | None] = ContextVar("payplane_decided_trace_id", default=None)


def decided_trace_ids():
    """The SDK's random ids, except that a root request's server span gets the trace id its
    sampling was decided on, so the sampler, asked again for that span, decides the same."""
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class DecidedTraceIds(RandomIdGenerator):
        def generate_trace_id(self) -> int:
            decided = _decided_trace_id.get()
            if decided is None:
                return self.new_trace_id()
            _decided_trace_id.set(None)
            return decided

        def new_trace_id(self) -> int:
            return super().generate_trace_id()

    return DecidedTraceIds()


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
    _provider = TracerProvider(resource=resource, id_generator=decided_trace_ids())
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


def _redis_in_recorded_traces_only() -> None:
    """Past the official redis instrumentation, outside a recording span, straight to redis's
    own method: the instrumentation formats the command and starts a span before it asks
    whether the span records (a sampled-out request's span never does)."""
    import wrapt

    def wrapper(instrumented, instance, args, kwargs):
        if trace.get_current_span().is_recording():
            return instrumented(*args, **kwargs)
        return instrumented.__wrapped__(*args, **kwargs)

    for name in ("Redis.execute_command", "Pipeline.execute", "Pipeline.immediate_execute_command"):
        wrapt.wrap_function_wrapper("redis.asyncio.client", name, wrapper)


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
            if isinstance(instrumentor, RedisInstrumentor):
                _redis_in_recorded_traces_only()


def instrument_http_client(client) -> None:
    """Client spans and trace headers for an httpx client over another transport than httpx's
    own (``payplane_core.http``), which the global instrumentation does not reach."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(client)


def client_headers() -> dict[str, str]:
    """W3C headers of the current span for a request sent without httpx (the notifier's
    webhooks), so the receiver's side joins the trace; none when this process does not trace,
    as with httpx's instrumentation."""
    return carrier() if _provider is not None else {}


def _excluded(scope) -> bool:
    return scope.get("path") in EXCLUDED_PATHS or _sampled_out(scope)


def _sampled_out(scope) -> bool:
    """Whether the SDK's sampler (``OTEL_TRACES_SAMPLER``) drops this request's trace, asked
    before FastAPI builds a server span for it. A dropped request skips FastAPI's telemetry
    (its attributes, extraction, span and context switches: most of the cost of tracing a
    request that is not recorded) and gets the non-recording span the SDK makes for it, which
    carries its trace id and not-sampled flag on (logs, outbox, calls). A root request's trace
    id is chosen here and handed to its server span (``decided_trace_ids``), so a sampled one is
    decided the same way again, at the configured rate."""
    provider = _provider
    if provider is None:
        return False
    parent = propagate.extract(first_values(scope.get("headers", ())))
    caller = trace.get_current_span(parent).get_span_context()
    if caller.is_valid:
        trace_id = caller.trace_id
    else:
        trace_id = provider.id_generator.new_trace_id()
        _decided_trace_id.set(trace_id)  # for the span started below or by FastAPI
    name, kind = scope.get("method", "HTTP"), trace.SpanKind.SERVER
    if provider.sampler.should_sample(parent, trace_id, name, kind).decision.is_sampled():
        return False
    span = _sampling_tracer(provider).start_span(name, context=parent, kind=kind)
    scope[SAMPLED_OUT] = trace.set_span_in_context(span, parent)
    return True


@functools.lru_cache(maxsize=1)
def _sampling_tracer(provider) -> trace.Tracer:
    return provider.get_tracer(__name__)


def attach_sampled_out(scope) -> object | None:
    """Make a sampled-out request's context current (a token for ``detach``), else None."""
    context = scope.pop(SAMPLED_OUT, None)
    return None if context is None else otel_context.attach(context)


def detach(token: object | None) -> None:
    if token is not None:
        otel_context.detach(token)


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
    # Any mapping will do as it is (the propagators ask for their few keys): a copy of a
    # request's Starlette ``Headers`` looked every key up again by a scan of all of them.
    return propagate.extract(carrier if carrier is not None else {})


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
    """The current trace id as a histogram exemplar (links a latency bucket to its trace), for
    a recorded trace only: a sampled-out one's id would link to nothing."""
    context = trace.get_current_span().get_span_context()
    if not (context.is_valid and context.trace_flags.sampled):
        return None
    return {"trace_id": format(context.trace_id, "032x")}
