"""A request that did not come through the gateway is 401, however it is dressed up."""

import time

import httpx
import pytest
from payplane_core.internal_auth import generate_key

from tests.support.internal import GatewayAuth
from tests.support.payments import count


def auth(**kwargs):
    return GatewayAuth(audience=kwargs.pop("audience", "payments"), merchant_id="mer_x", **kwargs)


@pytest.mark.parametrize(
    "signer",
    [
        None,  # no signature at all
        auth(key=generate_key()),  # the gateway's name, another key
        auth(now=time.time() - 120),  # expired
        auth(caller="webhooks"),  # signed, but not a merchant request from the gateway
        auth(caller="notifier"),  # a genuine caller this service does not accept
        auth(audience="merchants"),  # the gateway's, but made for another service
    ],
    ids=["missing", "forged", "expired", "not-gateway", "not-allowed", "other-audience"],
)
async def test_requests_without_a_valid_gateway_signature_are_401(app, db, signer):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://payments.test", auth=signer
    ) as client:
        created = await client.post("/api/v1/payments", json={"amount": 1, "currency": "EUR"})
        listed = await client.get("/api/v1/payments")
    for response in (created, listed):
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert await count(db, "payments", "mer_x") == 0


async def test_spoofed_merchant_header_on_a_signed_request_is_401(app):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://payments.test", auth=auth()
    ) as client:
        request = client.build_request("GET", "/api/v1/payments")
        signed = next(auth().auth_flow(request))
        signed.headers["x-payplane-merchant-id"] = "mer_victim"
        response = await client.send(signed, auth=None)
    assert response.status_code == 401
