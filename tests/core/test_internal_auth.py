"""The internal signature: per-caller keys, audience, body digest, replay; a service refusing
direct access."""

import time

import pytest
from payplane_core.context import first_values
from payplane_core.internal_auth import (
    BODY_DIGEST,
    NONCE,
    PROBE,
    SIGNATURE,
    TIMESTAMP,
    InternalAuthError,
    NonceCache,
    generate_key,
    load_private_key,
    parse_caller_keys,
    public_key,
    signed_headers,
    verify,
)

KEYS = {caller: generate_key() for caller in ("gateway", "notifier")}
PUBLIC = parse_caller_keys([f"{c}:{public_key(k)}" for c, k in KEYS.items()])
ARGS = dict(method="POST", path="/api/v1/payments?x=1", request_id="r-1", body=b'{"a":1}')


def sign(caller="gateway", audience="payments", key=None, **overrides):
    return signed_headers(
        load_private_key(key or KEYS[caller]),
        caller=caller,
        audience=audience,
        **(ARGS | overrides),
    )


def check(headers, keys=PUBLIC, nonces=None, **overrides):
    kwargs = (
        dict(
            method="POST",
            path="/api/v1/payments?x=1",
            body=b'{"a":1}',
            audience="payments",
            max_age_seconds=30,
        )
        | overrides
    )
    return verify(keys, headers, nonces=nonces, **kwargs)


def test_round_trip_carries_identity():
    headers = sign(merchant_id="mer_1", key_id="key_1", scopes=["b", "a"])
    identity = check(headers)
    assert (identity.caller, identity.merchant_id, identity.key_id) == ("gateway", "mer_1", "key_1")
    assert identity.scopes == {"a", "b"} and identity.request_id == "r-1"


def test_a_caller_may_have_two_keys_during_a_rotation():
    new = generate_key()
    keys = parse_caller_keys(
        [f"gateway:{public_key(new)}", f"gateway:{public_key(KEYS['gateway'])}"]
    )
    assert check(sign(), keys=keys).caller == "gateway"
    assert check(sign(key=new), keys=keys).caller == "gateway"


def test_one_caller_cannot_sign_as_another():
    # the notifier's key, the gateway's name: refused (a compromised notifier is only itself)
    with pytest.raises(InternalAuthError, match="invalid internal signature"):
        check(sign(caller="gateway", key=KEYS["notifier"]))


def test_a_caller_the_service_does_not_accept_is_refused():
    only_gateway = {"gateway": PUBLIC["gateway"]}
    with pytest.raises(InternalAuthError, match="caller not accepted"):
        check(sign(caller="notifier"), keys=only_gateway)


def test_a_request_signed_for_another_service_is_refused():
    with pytest.raises(InternalAuthError, match="another service"):
        check(sign(audience="merchants"))


def test_a_captured_request_cannot_carry_another_body():
    with pytest.raises(InternalAuthError, match="body does not match"):
        check(sign(), body=b'{"a":2}')
    headers = sign(body=b'{"a":2}')
    headers[BODY_DIGEST] = sign()[BODY_DIGEST]  # digest swapped back: the signature breaks
    with pytest.raises(InternalAuthError, match="invalid internal signature"):
        check(headers)


def test_a_captured_request_cannot_be_replayed():
    nonces = NonceCache()
    headers = sign()
    check(headers, nonces=nonces)
    with pytest.raises(InternalAuthError, match="replayed"):
        check(headers, nonces=nonces)
    check(sign(), nonces=nonces)  # a fresh request (new nonce) still passes


def test_nonces_are_forgotten_once_their_signature_expired():
    nonces = NonceCache()
    assert nonces.first_use("n1", expires_at=100, now=50)
    assert not nonces.first_use("n1", expires_at=100, now=99)
    assert nonces.first_use("n2", expires_at=300, now=200)  # n1 expired: dropped
    assert nonces.first_use("n1", expires_at=300, now=200)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h: h.pop(SIGNATURE), "missing internal signature"),
        (lambda h: h.update({SIGNATURE: "A" * 86}), "invalid internal signature"),
        # Too short or too long for Ed25519: refused as invalid, never an error of the verifier.
        (lambda h: h.update({SIGNATURE: "AAAA"}), "invalid internal signature"),
        (lambda h: h.update({SIGNATURE: h[SIGNATURE] + "AAAA"}), "invalid internal signature"),
        (lambda h: h.update({"x-payplane-merchant-id": "mer_evil"}), "invalid internal signature"),
        (lambda h: h.update({"x-payplane-scopes": "payments:write"}), "invalid internal signature"),
        (lambda h: h.update({"x-request-id": "other"}), "invalid internal signature"),
        (lambda h: h.update({NONCE: "other"}), "invalid internal signature"),
        (lambda h: h.update({NONCE: ""}), "invalid internal signature"),
        (lambda h: h.update({TIMESTAMP: "soon"}), "malformed internal signature"),
    ],
)
def test_tampering_is_refused(mutate, reason):
    headers = sign(merchant_id="mer_1")
    mutate(headers)
    with pytest.raises(InternalAuthError, match=reason):
        check(headers)


def test_the_breaker_probe_mark_is_signed_and_cannot_be_added_or_stripped():
    plain, probe = sign(merchant_id="mer_1"), sign(merchant_id="mer_1", probe=True)
    assert PROBE not in plain and probe[PROBE] == "1"
    assert not check(plain).probe and check(probe).probe
    forged = plain | {PROBE: "1"}  # a mark added to a genuine unmarked request
    with pytest.raises(InternalAuthError, match="invalid internal signature"):
        check(forged)
    stripped = {k: v for k, v in probe.items() if k != PROBE}
    with pytest.raises(InternalAuthError, match="invalid internal signature"):
        check(stripped)
    with pytest.raises(InternalAuthError, match="invalid internal signature"):
        check(probe | {PROBE: "0"})


@pytest.mark.parametrize(
    "overrides", [{"method": "GET"}, {"path": "/api/v1/payments"}, {"path": "/api/v1/payments?x=2"}]
)
def test_signature_is_bound_to_method_and_target(overrides):
    with pytest.raises(InternalAuthError):
        check(sign(), **overrides)


def test_expiry_both_ways():
    with pytest.raises(InternalAuthError, match="expired"):
        check(sign(now=time.time() - 31))
    with pytest.raises(InternalAuthError, match="expired"):
        check(sign(now=time.time() + 31))


def test_newlines_cannot_forge_field_boundaries():
    with pytest.raises(InternalAuthError):
        sign(merchant_id="mer_1\ngateway")


def test_keys_must_be_32_bytes():
    with pytest.raises(ValueError, match="32 bytes"):
        load_private_key("dG9vLXNob3J0")
    with pytest.raises(ValueError, match="caller key entry"):
        parse_caller_keys(["gateway:dG9vLXNob3J0"])


def test_a_repeated_header_counts_once_and_the_first_wins():
    """What the services hand the check (``first_values``) reads as Starlette's ``Headers.get``
    does: a caller header added after the signed one changes nothing."""
    signed = sign(caller="notifier")
    raw = [(k.encode(), v.encode()) for k, v in signed.items()] + [
        (b"X-Payplane-Caller", b"gateway")
    ]
    headers = first_values(raw)
    assert headers["x-payplane-caller"] == "notifier"
    assert check(headers).caller == "notifier"
    assert first_values([(b"Content-Type", b"a"), (b"content-type", b"b")]) == {"content-type": "a"}
