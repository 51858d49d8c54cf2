"""The internal signature: signer and verifier, and a service refusing direct access."""

import time

import pytest
from payplane_core.internal_auth import (
    SIGNATURE,
    TIMESTAMP,
    InternalAuthError,
    signed_headers,
    verify,
)

ARGS = dict(method="POST", path="/api/v1/payments?x=1", caller="gateway", request_id="r-1")


def check(headers, secrets=("s1",), **overrides):
    kwargs = dict(method="POST", path="/api/v1/payments?x=1", max_age_seconds=30) | overrides
    return verify(list(secrets), headers, **kwargs)


def test_round_trip_carries_identity():
    headers = signed_headers("s1", merchant_id="mer_1", key_id="key_1", scopes=["b", "a"], **ARGS)
    identity = check(headers)
    assert (identity.caller, identity.merchant_id, identity.key_id) == ("gateway", "mer_1", "key_1")
    assert identity.scopes == {"a", "b"} and identity.request_id == "r-1"


def test_any_listed_secret_verifies_so_secrets_can_rotate():
    assert check(signed_headers("old", **ARGS), secrets=("new", "old")).caller == "gateway"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h: h.pop(SIGNATURE), "missing internal signature"),
        (lambda h: h.update({SIGNATURE: "0" * 64}), "invalid internal signature"),
        (lambda h: h.update({"x-payplane-merchant-id": "mer_evil"}), "invalid internal signature"),
        (lambda h: h.update({"x-payplane-scopes": "payments:write"}), "invalid internal signature"),
        (lambda h: h.update({"x-request-id": "other"}), "invalid internal signature"),
        (lambda h: h.update({TIMESTAMP: "soon"}), "malformed internal timestamp"),
    ],
)
def test_tampering_is_refused(mutate, reason):
    headers = signed_headers("s1", merchant_id="mer_1", **ARGS)
    mutate(headers)
    with pytest.raises(InternalAuthError, match=reason):
        check(headers)


@pytest.mark.parametrize(
    "overrides", [{"method": "GET"}, {"path": "/api/v1/payments"}, {"path": "/api/v1/payments?x=2"}]
)
def test_signature_is_bound_to_method_and_target(overrides):
    with pytest.raises(InternalAuthError):
        check(signed_headers("s1", **ARGS), **overrides)


def test_wrong_secret_and_expiry():
    with pytest.raises(InternalAuthError):
        check(signed_headers("forged", **ARGS))
    with pytest.raises(InternalAuthError, match="expired"):
        check(signed_headers("s1", now=time.time() - 31, **ARGS))
    with pytest.raises(InternalAuthError, match="expired"):
        check(signed_headers("s1", now=time.time() + 31, **ARGS))


def test_newlines_cannot_forge_field_boundaries():
    with pytest.raises(InternalAuthError):
        signed_headers("s1", merchant_id="mer_1\ngateway", **ARGS)
