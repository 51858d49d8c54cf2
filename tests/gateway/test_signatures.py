"""RFC 9421 at the gateway, signed by an independent client library (requests-http-signature)
and, for a component choice that library does not make, by http-message-signatures' signer."""

import json

import pytest
import requests
from gateway.decision import split_target
from gateway.denials import Denied
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms
from payplane_core.internal_auth import parse_caller_keys
from payplane_core.internal_auth import verify as verify_internal

from tests.support.internal import CALLER_KEYS
from tests.support.signing import (
    ask_gateway,
    new_nonce,
    signed_create,
    signed_request,
    upstream_identity,
)

BODY = {"amount": 1250, "currency": "EUR", "description": "order 42"}


def post(creds, body=BODY, **signer):
    return signed_create(creds, body, **signer)


def assert_denied(response, status: int, reason: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["reason"] == reason, problem
    assert problem["type"].endswith("/" + reason)
    assert problem["status"] == status and problem["detail"] and problem["request_id"]


async def test_valid_signed_post_is_allowed_with_internal_headers(gw, creds):
    prepared = post(creds)
    prepared.headers["X-Request-Id"] = "req-valid-1"
    response = await ask_gateway(gw, prepared)
    assert response.status_code == 200, response.text
    assert response.headers["x-payplane-caller"] == "gateway"
    assert response.headers["x-payplane-merchant-id"] == creds["merchant_id"]
    assert response.headers["x-payplane-key-id"] == creds["api_key_id"]
    assert response.headers["x-payplane-scopes"] == "payments:read,payments:write"
    assert response.headers["x-request-id"] == "req-valid-1"
    # exactly what the upstream service will verify
    identity = upstream_identity(response, prepared)
    assert identity.merchant_id == creds["merchant_id"] and identity.request_id == "req-valid-1"


async def test_query_strings_are_signed_through(gw, creds):
    prepared = signed_request(
        "GET", "/api/v1/payments?limit=5&starting_after=pay_x", api_key=creds["read_key"]
    )
    response = await ask_gateway(gw, prepared)
    assert response.status_code == 200
    verify_internal(
        parse_caller_keys(CALLER_KEYS),
        response.headers,
        method="GET",
        path="/api/v1/payments?limit=5&starting_after=pay_x",
        body=b"",
        audience="payments",
        max_age_seconds=30,
    )
    assert response.headers["x-payplane-scopes"] == "payments:read"
    assert response.headers["x-request-id"]  # generated when Envoy sent none


async def test_path_component_instead_of_target_uri(gw, creds):
    prepared = post(creds, covered_component_ids=("@method", "@path", "content-digest"))
    assert (await ask_gateway(gw, prepared)).status_code == 200


async def test_changed_body_is_refused(gw, creds):
    prepared = post(creds)
    tampered = json.dumps({**BODY, "amount": 999999}).encode()
    assert_denied(await ask_gateway(gw, prepared, body=tampered), 403, "content-digest-mismatch")


async def test_changed_body_with_recomputed_digest_is_refused(gw, creds):
    prepared = post(creds)
    other = post(creds, body={**BODY, "amount": 999999})  # its digest, but our signature
    prepared.headers["Content-Digest"] = other.headers["Content-Digest"]
    assert_denied(await ask_gateway(gw, prepared, body=other.body), 403, "signature-invalid")


async def test_changed_path_is_refused(gw, creds):
    prepared = post(creds)
    response = await ask_gateway(gw, prepared, path="/api/v1/payments/pay_1/show")
    assert_denied(response, 403, "signature-invalid")


async def test_changed_method_is_refused(gw, creds):
    prepared = post(creds)
    assert_denied(await ask_gateway(gw, prepared, method="PUT"), 403, "signature-invalid")


async def test_missing_digest_is_refused(gw, creds):
    prepared = post(creds)
    del prepared.headers["Content-Digest"]
    assert_denied(await ask_gateway(gw, prepared), 403, "content-digest-missing")


async def test_digest_not_covered_is_refused(gw, creds):
    """Signed by http-message-signatures' own signer, covering only method and path."""
    body = json.dumps(BODY).encode()
    prepared = signed_request("POST", "/api/v1/payments", api_key=creds["api_key"], body=BODY)
    prepared.headers["Content-Digest"] = post(creds).headers["Content-Digest"]
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.HMAC_SHA256,
        key_resolver=MappingKeyResolver(
            private_keys={creds["api_key_id"]: creds["signing_secret"].encode()}, public_keys={}
        ),
    )
    signer.sign(
        prepared,
        key_id=creds["api_key_id"],
        nonce=new_nonce(),
        use_existing_digest=True,
        covered_component_ids=("@method", "@path"),
    )
    assert_denied(await ask_gateway(gw, prepared, body=body), 403, "signature-components-missing")


async def test_stale_and_future_created_are_refused(gw, creds):
    assert_denied(
        await ask_gateway(gw, post(creds, created_offset=-301)), 403, "signature-created-stale"
    )
    assert_denied(
        await ask_gateway(gw, post(creds, created_offset=+301)), 403, "signature-created-future"
    )
    # inside the window either way: fine
    assert (await ask_gateway(gw, post(creds, created_offset=-250))).status_code == 200
    assert (await ask_gateway(gw, post(creds, created_offset=+250))).status_code == 200


async def test_reused_nonce_is_refused(gw, creds):
    nonce = new_nonce()
    first = post(creds, nonce=nonce)
    assert (await ask_gateway(gw, first)).status_code == 200
    assert_denied(await ask_gateway(gw, first), 403, "signature-nonce-reused")
    # a new signature with the same nonce is a replay too
    assert_denied(await ask_gateway(gw, post(creds, nonce=nonce)), 403, "signature-nonce-reused")


async def test_missing_nonce_is_refused(gw, creds):
    assert_denied(
        await ask_gateway(gw, post(creds, use_nonce=False)), 403, "signature-nonce-missing"
    )


async def test_unknown_key_is_401(gw, creds):
    prepared = signed_request(
        "POST",
        "/api/v1/payments",
        api_key="pk_" + "x" * 43,
        key_id=creds["api_key_id"],
        secret=creds["signing_secret"],
        body=BODY,
    )
    response = await ask_gateway(gw, prepared)
    assert_denied(response, 401, "key-unknown")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_missing_and_malformed_authorization_are_401(gw, creds):
    prepared = post(creds)
    del prepared.headers["Authorization"]
    response = await ask_gateway(gw, prepared)
    assert_denied(response, 401, "key-missing")
    assert response.headers["www-authenticate"] == "Bearer"
    prepared = post(creds)
    prepared.headers["Authorization"] = "Basic abc"
    assert_denied(await ask_gateway(gw, prepared), 401, "key-malformed")


async def test_wrong_secret_is_refused(gw, creds):
    prepared = signed_request(
        "POST",
        "/api/v1/payments",
        api_key=creds["api_key"],
        key_id=creds["api_key_id"],
        secret="sig_" + "w" * 43,
        body=BODY,
    )
    assert_denied(await ask_gateway(gw, prepared), 403, "signature-invalid")


async def test_keyid_of_another_key_is_refused(gw, svc, creds):
    other = (await svc.create())["credentials"]
    prepared = signed_request(
        "POST",
        "/api/v1/payments",
        api_key=creds["api_key"],
        key_id=other["api_key_id"],
        secret=other["signing_secret"],
        body=BODY,
    )
    assert_denied(await ask_gateway(gw, prepared), 403, "signature-keyid-mismatch")


async def test_unsigned_write_is_refused(gw, creds):
    prepared = signed_request("POST", "/api/v1/payments", api_key=creds["api_key"], body=BODY)
    assert_denied(await ask_gateway(gw, prepared), 403, "signature-missing")


async def test_read_only_key_cannot_post(gw, creds):
    # even with a perfectly valid signature
    prepared = signed_request(
        "POST",
        "/api/v1/payments",
        api_key=creds["read_key"],
        key_id=creds["api_key_id"],
        secret=creds["signing_secret"],
        body=BODY,
    )
    assert_denied(await ask_gateway(gw, prepared), 403, "scope-missing")


@pytest.mark.parametrize("key", ["api_key", "read_key"])
async def test_reads_need_no_signature(gw, creds, key):
    for path in (
        "/api/v1/payments",
        "/api/v1/payments/pay_1/show",
        "/api/v1/payments/pay_1/tracking",
    ):
        response = await ask_gateway(gw, signed_request("GET", path, api_key=creds[key]))
        assert response.status_code == 200, response.text


async def test_provider_webhook_needs_no_merchant_key(gw):
    prepared = requests.Request(
        "POST", "http://127.0.0.1:8080/api/v1/payments/webhook", data=b'{"type":"charge.succeeded"}'
    ).prepare()
    response = await ask_gateway(gw, prepared)
    assert response.status_code == 200
    assert response.headers["x-payplane-merchant-id"] == ""
    assert response.headers["x-payplane-scopes"] == "webhooks:provider"
    verify_internal(
        parse_caller_keys(CALLER_KEYS),
        response.headers,
        method="POST",
        path="/api/v1/payments/webhook",
        body=prepared.body,
        audience="webhooks",
        max_age_seconds=30,
    )


async def test_unknown_routes_and_odd_paths(gw, creds):
    response = await ask_gateway(gw, signed_request("GET", "/admin", api_key=creds["api_key"]))
    assert_denied(response, 404, "route-not-found")
    for path in ("/api/v1/payments/%2e%2e/x", "/api/v1//payments", "/api/v1/payments/a%2Fb"):
        prepared = signed_request("GET", "/api/v1/payments", api_key=creds["api_key"])
        assert_denied(await ask_gateway(gw, prepared, path=path), 400, "path-not-normalized")
    # dot segments that reach the gateway raw (httpx would resolve them before sending)
    for raw in ("/api/v1/payments/../admin", "/api/v1/payments/./x", "/api/v1/payments/.."):
        with pytest.raises(Denied) as denied:
            split_target(raw)
        assert denied.value.reason == "path-not-normalized"


async def test_denials_are_counted_by_reason(gw, creds):
    from prometheus_client import REGISTRY

    def count() -> float:
        return (
            REGISTRY.get_sample_value(
                "payplane_gateway_decisions_total",
                {"decision": "deny", "reason": "signature-invalid"},
            )
            or 0.0
        )

    before = count()
    await ask_gateway(gw, post(creds), method="PUT")
    assert count() == before + 1
    assert "payplane_gateway_decisions_total" in (await gw.get("/metrics")).text
