"""How a bench signs as a merchant: RFC 9421 over method, path and body digest, with a nonce,
as the gateway requires of every write."""

from requests_http_signature import HTTPSignatureAuth, algorithms


def merchant_auth(creds: dict[str, str]) -> HTTPSignatureAuth:
    """``requests`` auth for a write key's credentials (``signing_secret``, ``api_key_id``)."""
    return HTTPSignatureAuth(
        signature_algorithm=algorithms.HMAC_SHA256,
        key=creds["signing_secret"].encode(),
        key_id=creds["api_key_id"],
        covered_component_ids=("@method", "@path", "content-digest"),
        use_nonce=True,
    )
