"""Create-payment throughput and latency straight to the payments service."""

import asyncio
import json

from payplane_cli import local
from payplane_cli.stack import Stack, internal_key_name
from payplane_core.ids import new_id
from payplane_core.internal_auth import (
    SCOPE_PAYMENTS_READ,
    SCOPE_PAYMENTS_WRITE,
    load_private_key,
    signed_headers,
)

from benchmarks.load import Prepared, run

REQUESTS = 3000
CONCURRENCY = 32
BODY = json.dumps({"amount": 1999, "currency": "EUR", "metadata": {"bench": "1"}}).encode()


def signed_create(stack: Stack, merchant_id: str) -> Prepared:
    key = load_private_key(stack.secrets()[internal_key_name("gateway")])
    request_id = new_id("req")
    headers = signed_headers(
        key,
        method="POST",
        path="/api/v1/payments",
        caller="gateway",
        audience="payments",
        body=BODY,
        request_id=request_id,
        merchant_id=merchant_id,
        key_id="key_bench",
        scopes=[SCOPE_PAYMENTS_READ, SCOPE_PAYMENTS_WRITE],
    )
    headers["content-type"] = "application/json"
    return Prepared("POST", f"{stack.url('payments')}/api/v1/payments", headers, BODY)


def run_bench() -> None:
    stack = Stack.for_bench()
    local.fresh_up(stack, ["payments"])
    try:
        merchant = new_id("mer")
        health = [Prepared("GET", f"{stack.url('payments')}/health", {})] * REQUESTS
        warmup = [signed_create(stack, merchant) for _ in range(300)]
        creates = [signed_create(stack, merchant) for _ in range(REQUESTS)]
        asyncio.run(run("warmup", warmup, CONCURRENCY, lambda s: s == 201))
        base = asyncio.run(
            run("baseline: GET /health (no database)", health, CONCURRENCY, lambda s: s == 200)
        )
        result = asyncio.run(
            run("POST /api/v1/payments (direct)", creates, CONCURRENCY, lambda s: s == 201)
        )
        print(base.line())
        print(result.line())
        print(
            f"  create costs {result.pct(0.5) / base.pct(0.5):.1f}x the /health p50; "
            "each create = 1 atomic SQL statement (payment + timeline + outbox rows)"
        )
    finally:
        local.down(stack)
