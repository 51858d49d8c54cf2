"""Ingress overhead: signed create-payment through Envoy + gateway vs straight to payments."""

import asyncio
import json
import time

import requests
from payplane_cli import local
from payplane_cli.merchants import create_merchant, secret_view
from payplane_cli.stack import Stack

from benchmarks.cpu import per_request, snapshot
from benchmarks.load import Prepared, run
from benchmarks.payments import signed_create
from benchmarks.signing import merchant_auth

REQUESTS = 2000
CONCURRENCY = 16
BODY = {"amount": 1999, "currency": "EUR"}


def merchant_request(base: str, credentials: dict) -> Prepared:
    """Signed exactly as a merchant does (requests-http-signature), before the clock starts."""
    request = requests.Request(
        "POST",
        base + "/api/v1/payments",
        data=json.dumps(BODY).encode(),
        headers={
            "Authorization": f"Bearer {credentials['api_key']}",
            "Content-Type": "application/json",
        },
    ).prepare()
    merchant_auth(credentials)(request)
    return Prepared("POST", request.url, dict(request.headers), request.body)


def run_bench() -> None:
    stack = Stack.for_bench()
    local.fresh_up(stack, ["payments", "merchants", "gateway", "envoy"])
    try:
        created = create_merchant(
            stack,
            name=f"bench-{time.time_ns()}",
            requests_per_second=100_000,
            burst=100_000,
            payments_per_month=1_000_000_000,
        )
        credentials = secret_view(created["credentials"])
        merchant_id = credentials["merchant_id"]
        base = stack.url("envoy")
        warm = [merchant_request(base, credentials) for _ in range(200)]
        through = [merchant_request(base, credentials) for _ in range(REQUESTS)]
        direct = [signed_create(stack, merchant_id) for _ in range(REQUESTS)]
        asyncio.run(run("warmup", warm, CONCURRENCY, lambda s: s == 201))
        # Interleave the two series so both see the same machine state.
        half = REQUESTS // 2
        results = {"direct": [], "ingress": []}
        for part in (slice(None, half), slice(half, None)):
            for kind, label, prepared in (
                ("direct", "direct: POST payments (internal sig)", direct),
                ("ingress", "ingress: Envoy + gateway + payments", through),
            ):
                before, _ = snapshot(stack)
                result = asyncio.run(run(label, prepared[part], CONCURRENCY, lambda s: s == 201))
                results[kind].append(result)
                print(result.line())
                print("    CPU ms per request:", per_request(before, stack, result.requests))
        a, c = results["direct"]
        b, d = results["ingress"]
        direct_p50 = (a.pct(0.5) + c.pct(0.5)) / 2
        ingress_p50 = (b.pct(0.5) + d.pct(0.5)) / 2
        direct_p99 = (a.pct(0.99) + c.pct(0.99)) / 2
        ingress_p99 = (b.pct(0.99) + d.pct(0.99)) / 2
        print(
            f"  ingress/direct: p50 {ingress_p50 / direct_p50:.2f}x "
            f"(+{ingress_p50 - direct_p50:.2f} ms), p99 {ingress_p99 / direct_p99:.2f}x, "
            f"throughput {((b.rps + d.rps) / 2) / ((a.rps + c.rps) / 2):.2f}x; "
            "signed RFC 9421 requests with unique nonces, prepared before timing"
        )
    finally:
        local.down(stack)
