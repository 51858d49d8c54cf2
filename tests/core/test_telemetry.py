"""Tracing is configured only by the standard variables; off means no SDK at all, and a trace
still passes through an untraced hop unbroken (standard W3C propagator)."""

from opentelemetry import trace
from payplane_core import telemetry

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_no_endpoint_means_no_sdk_and_no_instrumentation(monkeypatch):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert telemetry.setup_tracing("payments") is False
    assert not hasattr(trace.get_tracer_provider(), "add_span_processor")
    assert telemetry.current_ids() == ("", "")
    assert telemetry.exemplar() is None


def test_sdk_disabled_wins_over_an_endpoint(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert telemetry.tracing_configured() is False
    monkeypatch.delenv("OTEL_SDK_DISABLED")
    assert telemetry.tracing_configured() is True


def test_an_untraced_hop_carries_the_callers_context_on():
    carried = telemetry.carrier({"traceparent": PARENT, "x-other": "1"})
    assert carried == {"traceparent": PARENT}
    assert telemetry.carrier({}) == {}
    assert telemetry.carrier({"traceparent": "garbage"}) == {}


async def test_queries_get_spans_only_inside_a_recorded_trace():
    import asyncpg
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    instrumentor = telemetry._queries_in_recorded_traces_only()
    instrumentor.instrument(tracer_provider=provider)
    conn = await asyncpg.connect("postgresql://payplane:payplane@127.0.0.1:5432/postgres")
    try:
        await conn.fetchval("SELECT 1")  # a poll outside any request: no trace of its own
        with TracerProvider(sampler=ALWAYS_OFF).get_tracer("t").start_as_current_span("out"):
            await conn.fetchval("SELECT 2")  # a sampled-out trace: nothing to record
        with provider.get_tracer("t").start_as_current_span("request"):
            await conn.fetchval("SELECT 3")
            statement = await conn.prepare("SELECT 4")
            await statement.fetchval()
    finally:
        await conn.close()
        instrumentor.uninstrument()
    spans = exported.get_finished_spans()
    assert [s.name for s in spans] == ["SELECT", "SELECT", "request"]
    request = spans[-1].context.span_id
    assert all(s.parent.span_id == request for s in spans[:-1])


async def test_fastapi_server_spans_continue_the_callers_trace_and_skip_probes():
    import httpx
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    app = FastAPI(telemetry=telemetry.FASTAPI_TELEMETRY | {"tracer_provider": provider})

    @app.post("/things/{thing}")
    async def thing(thing: str) -> dict[str, str]:
        return {"trace": telemetry.current_ids()[0]}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as client:
        answer = await client.post("/things/a", headers={"traceparent": PARENT})
        assert (await client.get("/health")).status_code == 200
    assert answer.json()["trace"] == PARENT.split("-")[1]
    [span] = exported.get_finished_spans()  # none for the probe, none per dependency
    assert span.name == "POST /things/{thing}"
    assert format(span.parent.span_id, "016x") == PARENT.split("-")[2]


async def test_sampled_out_requests_skip_fastapis_span_yet_carry_their_trace(monkeypatch):
    """The sampling is decided before FastAPI's telemetry (``_sampled_out``): a dropped request
    skips it but keeps a trace id for its logs and passes the not-sampled flag on; a sampled
    root is recorded under the very trace id it was decided on (so the rate is the sampler's)."""
    import httpx
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    from payplane_core.middleware import RequestContextMiddleware

    exported = InMemorySpanExporter()
    provider = TracerProvider(
        sampler=ParentBased(TraceIdRatioBased(0.5)), id_generator=telemetry.decided_trace_ids()
    )
    provider.add_span_processor(SimpleSpanProcessor(exported))
    monkeypatch.setattr(telemetry, "_provider", provider)
    app = FastAPI(telemetry=telemetry.FASTAPI_TELEMETRY | {"tracer_provider": provider})
    app.add_middleware(RequestContextMiddleware, service="svc", max_body_bytes=1024)

    @app.post("/things")
    async def things() -> dict:
        recording = trace.get_current_span().is_recording()
        ids, exemplar = telemetry.current_ids(), telemetry.exemplar()
        return {"ids": ids, "recording": recording, "exemplar": exemplar, **telemetry.carrier()}

    transport = httpx.ASGITransport(app=app)
    sampled_out_parent = PARENT.removesuffix("01") + "00"
    async with httpx.AsyncClient(transport=transport, base_url="http://svc.test") as client:
        roots = [(await client.post("/things")).json() for _ in range(40)]
        child = await client.post("/things", headers={"traceparent": sampled_out_parent})
    recorded = [answer for answer in roots if answer["recording"]]
    assert 0 < len(recorded) < len(roots)  # both ways taken (2 * 0.5**40 that they are not)
    spans = exported.get_finished_spans()
    assert sorted(format(s.context.trace_id, "032x") for s in spans) == sorted(
        answer["ids"][0] for answer in recorded
    )
    child = child.json()
    assert child["ids"][0] == PARENT.split("-")[1] and not child["recording"]
    for answer in [*roots, child]:
        trace_id, span_id = answer["ids"]
        _, carried, carried_span, flags = answer["traceparent"].split("-")
        assert (carried, carried_span) == (trace_id, span_id)  # what logs and the outbox get
        assert bool(int(flags, 16) & 1) is answer["recording"]
        # A latency exemplar only links to a trace that was recorded.
        assert answer["exemplar"] == ({"trace_id": trace_id} if answer["recording"] else None)
