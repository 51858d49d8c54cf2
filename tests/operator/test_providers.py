"""Provider resources → the providers registry (secrets read from the referenced Secret) and
the real Envoy's routing (each Provider's own callback bucket), with no restart."""

import base64
import json
import os
import time
from datetime import UTC, datetime

import httpx
from payplane_core.platform import PROVIDER_WEBHOOK_PATH
from payplane_ingress import kubernetes
from payplane_operator.kube import Kube, api_client
from payplane_operator.routing import ConfigMapTarget, Routing
from standardwebhooks import Webhook

from tests.operator.test_merchants import NS, condition, unique
from tests.support.kube import wait_for

PROVIDERS = "payplane.io/v1alpha1/providers"


def provider(name: str, secret: str, **spec) -> dict:
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
        }
        | spec,
    }


def secret_keys() -> dict[str, str]:
    webhook = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    return {"api_key": "sk_live_" + os.urandom(12).hex(), "webhook_secret": webhook}


def secret(name: str, data: dict[str, str]) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
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
    name, secret_name = unique("psp"), unique("psp-creds")
    await kube.create(PROVIDERS, provider(name, secret_name), NS)

    async def waiting_for_secret():
        found = await kube.get(PROVIDERS, name, NS)
        return condition(found, "Ready").get("reason") == "SecretNotFound"

    await wait_for(waiting_for_secret)
    assert registry(stack, name) is None
    data = secret_keys()
    # Nothing touches the Provider: the operator watches the Secrets Providers reference.
    await kube.create("v1/secrets", secret(secret_name, data), NS)

    async def registered():
        found = await kube.get(PROVIDERS, name, NS)
        return condition(found, "Ready").get("status") == "True" and registry(stack, name)

    shown = await wait_for(registered)
    assert shown["priority"] == 50 and shown["currencies"] == ["EUR"] and shown["enabled"]
    assert data["api_key"] not in str(shown)
    await kube.delete(PROVIDERS, name, NS)
    await wait_for(lambda: registry(stack, name) and not registry(stack, name)["enabled"])


def callback(ingress: str, name: str, webhook_secret: str) -> httpx.Response:
    """A Standard Webhooks callback from provider ``name`` through Envoy."""
    data = {"payment_id": "pay_nope", "amount": 1000, "currency": "EUR"}
    body = json.dumps({"type": "charge.succeeded", "data": data})
    msg_id, now = f"msg_op_{time.time_ns()}", datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-provider": name,
        "webhook-signature": Webhook(webhook_secret).sign(msg_id, now, body),
    }
    return httpx.post(ingress + PROVIDER_WEBHOOK_PATH, content=body, headers=headers, timeout=5)


def limited(ingress: str, name: str, webhook_secret: str) -> bool:
    """Whether this provider's own bucket (1 request per second) is live in Envoy: of four
    callbacks within a second, some are refused by the route's limit."""
    statuses = [callback(ingress, name, webhook_secret).status_code for _ in range(4)]
    return 429 in statuses


async def test_provider_apply_routes_it_in_the_running_envoy_and_delete_removes_it(
    stack, kube, operator
):
    name, secret_name, data = unique("psp"), unique("psp-creds"), secret_keys()
    ingress = stack.url("envoy")
    assert not limited(ingress, name, data["webhook_secret"])  # the shared default bucket
    await kube.create("v1/secrets", secret(secret_name, data), NS)
    limit = {"requestsPerSecond": 1, "burst": 1}
    await kube.create(PROVIDERS, provider(name, secret_name, webhookRateLimit=limit), NS)

    # Routed (no restart): its callback reaches the webhooks service through Envoy and is
    # verified with the Secret's webhook secret, and its own bucket is enforced.
    await wait_for(lambda: limited(ingress, name, data["webhook_secret"]), timeout=20)
    await wait_for(
        lambda: callback(ingress, name, data["webhook_secret"]).status_code == 200, timeout=10
    )
    await kube.delete(PROVIDERS, name, NS)
    await wait_for(lambda: not limited(ingress, name, data["webhook_secret"]), timeout=20)
    assert await kube.get(PROVIDERS, name, NS) is None  # the finalizer is gone


async def test_in_a_cluster_the_routing_goes_to_the_configmap_envoy_mounts(api):
    _, url, kube = api
    routing = Routing(
        kubernetes.cluster_ingress(),
        ConfigMapTarget(Kube(api_client(url)), NS, "payplane-ingress-routing"),
    )
    await routing.publish({"acme": (5, 10)})
    first = await kube.get("v1/configmaps", "payplane-ingress-routing", NS)
    assert set(first["data"]) == set(kubernetes.ROUTING_FILES)
    clusters = json.loads(first["data"]["cds.json"])["resources"]
    assert {c["type"] for c in clusters} == {"STRICT_DNS"}  # Kubernetes Service names
    assert '"value": "acme"' in first["data"]["rds.json"]
    await routing.publish({})  # the Provider deleted: its bucket goes, the rest stays
    second = await kube.get("v1/configmaps", "payplane-ingress-routing", NS)
    assert "acme" not in second["data"]["rds.json"]
    assert second["data"]["cds.json"] == first["data"]["cds.json"]
