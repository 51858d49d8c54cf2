"""Provider resources → the providers registry, secrets read from the referenced Secret."""

import base64
import os

import httpx

from tests.operator.test_merchants import NS, condition, unique
from tests.support.kube import wait_for

PROVIDERS = "payplane.io/v1alpha1/providers"


def provider(name: str, secret: str) -> dict:
    return {
        "apiVersion": "payplane.io/v1alpha1",
        "kind": "Provider",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "displayName": "ACME Payments",
            "endpoint": "http://acme-psp.payments.svc.cluster.local:8080",
            "priority": 50,
            "currencies": ["EUR"],
            "apiKeySecretRef": {"name": secret, "key": "api_key"},
            "webhookSecretRef": {"name": secret, "key": "webhook_secret"},
        },
    }


def registry(stack, name: str) -> dict | None:
    with httpx.Client(
        base_url=stack.url("providers"), auth=stack.internal_signer("providers"), timeout=5
    ) as client:
        response = client.get(f"/internal/v1/providers/{name}")
    return response.json() if response.status_code == 200 else None


async def test_provider_is_registered_with_its_secret_refs_and_disabled_on_delete(
    stack, kube, operator
):
    name, secret = unique("psp"), unique("psp-creds")
    await kube.create(PROVIDERS, provider(name, secret), NS)

    async def waiting_for_secret():
        found = await kube.get(PROVIDERS, name, NS)
        return condition(found, "Ready").get("reason") == "SecretNotFound"

    await wait_for(waiting_for_secret)
    assert registry(stack, name) is None
    webhook = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    data = {"api_key": "sk_live_" + os.urandom(12).hex(), "webhook_secret": webhook}
    await kube.create(
        "v1/secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret, "namespace": NS},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        },
        NS,
    )
    # A Secret is not watched (least privilege): a touch of the Provider retries it.
    await kube.patch(PROVIDERS, name, {"metadata": {"annotations": {"retry": "1"}}}, NS)

    async def registered():
        found = await kube.get(PROVIDERS, name, NS)
        return condition(found, "Ready").get("status") == "True" and registry(stack, name)

    shown = await wait_for(registered)
    assert shown["priority"] == 50 and shown["currencies"] == ["EUR"] and shown["enabled"]
    assert data["api_key"] not in str(shown)
    await kube.delete(PROVIDERS, name, NS)
    await wait_for(lambda: registry(stack, name) and not registry(stack, name)["enabled"])
