"""schemathesis over the public API through the real Envoy, each request authenticated as a
real merchant's client does (read key for reads; write key + RFC 9421 signature for writes):
no response >= 500, none outside the public OpenAPI (every answer of the ingress included:
the gateway's refusals, Envoy's own replies)."""

from payments.core.config import Settings as PaymentsSettings
from payments.main import create_app as payments_app
from webhooks.core.config import Settings as WebhooksSettings
from webhooks.main import create_app as webhooks_app

from tests.support.fuzz import fuzz, public_paths
from tests.support.platform import Client, new_merchant
from tests.support.signing import SignedAsMerchant


def public_schema() -> dict:
    """The public API as the ingress routes it: payments' and the provider webhook's /api/v1
    operations, from the services' own OpenAPI (nothing internal)."""
    offline = "postgresql+asyncpg://unused/unused"  # building a schema never connects
    return public_paths(
        payments_app(PaymentsSettings(DATABASE_URL=offline)).openapi(),
        webhooks_app(WebhooksSettings(DATABASE_URL=offline)).openapi(),
    )


def test_public_api_fuzz_through_envoy(stack, ingress_url):
    merchant = new_merchant(stack, requests_per_second=500, burst=500)
    auth = SignedAsMerchant(Client(ingress_url, merchant))
    sent, failures = fuzz(ingress_url, auth, max_examples=25, schema=public_schema())
    print(f"public API through Envoy: {sent} requests, answers {dict(auth.statuses)}")
    assert sent > 100
    assert auth.statuses[201] > 0 and auth.statuses[200] > 0  # signed writes and reads got in
    assert failures == []
