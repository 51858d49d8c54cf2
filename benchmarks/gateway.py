"""Gateway decision time for a signed POST (what Envoy's ext_authz waits for), with baselines.

The gateway runs as its own uvicorn process with the merchants service of the bench stack.
Requests are signed before the clock starts with http-message-signatures' client-side signer
(the merchant's side), and sent as Envoy sends them: ``/authz`` + path, original method/body.
"""

import asyncio
import json
import secrets
from dataclasses import replace

from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms
from payplane_cli import local
from payplane_cli.merchants import create_merchant
from payplane_cli.stack import Stack
from redis import Redis

from benchmarks.cpu import per_request, snapshot
from benchmarks.load import Prepared, Result, run

REQUESTS = 3000
CONCURRENCY = 16
SERIAL = 1000
BODY = json.dumps({"amount": 1999, "currency": "EUR"}).encode()
INGRESS_HOST = "127.0.0.1:8080"


class _Request:
    """The minimal message http-message-signatures signs: method, url, headers."""

    def __init__(self, method: str, url: str, headers: dict[str, str]) -> None:
        self.method, self.url, self.headers = method, url, headers


def signed_post(gateway_url: str, creds: dict) -> Prepared:
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.HMAC_SHA256,
        key_resolver=MappingKeyResolver(
            private_keys={creds["api_key_id"]: creds["signing_secret"].encode()}, public_keys={}
        ),
    )
    headers = {"Authorization": f"Bearer {creds['api_key']}", "Content-Type": "application/json"}
    message = _Request("POST", f"http://{INGRESS_HOST}/api/v1/payments", headers)
    signer.sign(
        message,
        key_id=creds["api_key_id"],
        nonce=secrets.token_urlsafe(16),
        body=BODY,
        covered_component_ids=("@method", "@authority", "@path"),
    )
    headers["Host"] = INGRESS_HOST
    return Prepared("POST", f"{gateway_url}/authz/api/v1/payments", headers, BODY)


def read(gateway_url: str, creds: dict) -> Prepared:
    headers = {"Authorization": f"Bearer {creds['read_key']}", "Host": INGRESS_HOST}
    return Prepared("GET", f"{gateway_url}/authz/api/v1/payments", headers)


def redis_commands(stack: Stack) -> int:
    with Redis.from_url(stack.redis_url) as redis:
        return int(redis.info("stats")["total_commands_processed"])


def timed(stack: Stack, label: str, requests: list[Prepared], concurrency: int) -> Result:
    """``run``, with each server group's CPU per request (the gateway, Redis, ...) added."""
    before, _ = snapshot(stack)
    result = asyncio.run(run(label, requests, concurrency, lambda status: status == 200))
    cpu = per_request(before, stack, len(requests))
    return replace(result, label=f"{result.label} [CPU ms/req: {cpu}]")


def run_bench() -> None:
    stack = Stack.for_bench()
    local.fresh_up(stack, ["merchants", "gateway"])
    try:
        creds = create_merchant(
            stack,
            name=f"bench-{secrets.token_hex(3)}",
            requests_per_second=1e5,
            burst=10**6,
            payments_per_month=10**9,
        )["credentials"]
        url = stack.url("gateway")
        health = [Prepared("GET", f"{url}/health", {})] * REQUESTS
        warmup = [signed_post(url, creds) for _ in range(300)]
        reads = [read(url, creds)] * REQUESTS
        posts = [signed_post(url, creds) for _ in range(REQUESTS)]
        timed(stack, "warmup (fills the key caches)", warmup, CONCURRENCY)
        base = timed(stack, "baseline: gateway GET /health", health, CONCURRENCY)
        reads_result = timed(stack, "authz: GET with read key", reads, CONCURRENCY)
        before = redis_commands(stack)
        result = timed(stack, "authz: signed POST /api/v1/payments", posts, CONCURRENCY)
        per_request = (redis_commands(stack) - before) / REQUESTS
        single = [signed_post(url, creds) for _ in range(SERIAL)]
        serial = timed(stack, "authz: signed POST, one at a time", single, 1)
        for line in (base.line(), reads_result.line(), result.line(), serial.line()):
            print(line)
        print(
            f"  signed POST decision p99 {result.pct(0.99):.2f} ms at c={CONCURRENCY},"
            f" {serial.pct(0.99):.2f} ms one at a time (client-side, includes HTTP);"
            f" p50 {result.pct(0.5) / base.pct(0.5):.1f}x the /health p50"
        )
        print(
            "  Redis round trips per decision for a key this gateway has seen: 1 by design"
            " (EVALSHA: key entry unchanged, breaker, nonce, rate, quota); the server counted"
            f" {per_request:.2f} commands/request = EVALSHA + the script's own (shared Redis:"
            " others' traffic can add to it)"
        )
    finally:
        local.down(stack)
