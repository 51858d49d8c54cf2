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
