"""One payment is one trace: Envoy → gateway → payments → relay → RabbitMQ → providers →
simulator → webhooks → payments → notifier → merchant, one tree, spans collected over OTLP."""

import pytest

from tests.observability.conftest import wait_for

pytestmark = pytest.mark.e2e
HOPS = {"ingress", "gateway", "payments", "relay", "providers", "webhooks", "notifier"}
SIMULATORS = {"sim-a", "sim-b"}  # routing picks either


def test_a_payment_is_one_trace_from_envoy_to_the_merchants_webhook(
    traffic, otlp, merchants_endpoint
):
    event, headers = merchants_endpoint.wait_final(traffic["traced"])
    assert event["type"] == "payment.succeeded"
    _, trace_id, parent_of_merchant, _ = headers["traceparent"].split("-")

    def complete() -> list[dict]:
        spans = otlp.trace(trace_id)
        services = {s["service"] for s in spans}
        ids = {s["span_id"] for s in spans}
        ready = HOPS <= services and services & SIMULATORS and parent_of_merchant in ids
        return (
            spans if ready and all(s["parent_id"] in ids for s in spans if s["parent_id"]) else []
        )

    try:
        spans = wait_for(complete, within=30, what="the whole trace")
    except TimeoutError:
        got = otlp.trace(trace_id)
        ids = {s["span_id"] for s in got}
        orphans = [(s["service"], s["name"]) for s in got if s["parent_id"] not in ids | {""}]
        services = sorted({s["service"] for s in got})
        pytest.fail(f"incomplete trace: services {services}, orphans {orphans}")
    roots = [s for s in spans if not s["parent_id"]]
    assert [r["service"] for r in roots] == ["ingress"], roots  # Envoy starts it
    by_id = {s["span_id"]: s for s in spans}

    def path_to_root(span: dict) -> list[str]:
        services = []
        while span is not None:
            services.append(span["service"])
            span = by_id.get(span["parent_id"])
        return services[::-1]

    # The merchant's request hangs under the notifier, which hangs, hop by hop, under Envoy.
    chain = path_to_root(by_id[parent_of_merchant])
    assert chain[0] == "ingress" and chain[-1] == "notifier", chain
    assert {"relay", "providers", "webhooks"} <= set(chain) and set(chain) & SIMULATORS, chain
