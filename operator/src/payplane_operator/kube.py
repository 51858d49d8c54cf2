"""The Kubernetes side of the reconciler: the credentials Secret (owned by its Merchant), the
Secrets a Provider references, and touching Merchants when their Plan changes.

The official ``kubernetes`` client is synchronous; calls run in a worker thread.
"""

import asyncio
import base64
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from payplane_operator.reconcile import Permanent, secret_name

GROUP, VERSION = "payplane.io", "v1alpha1"
MANAGED_BY = {"app.kubernetes.io/managed-by": "payplane-operator"}


def api_client(server: str | None = None) -> client.ApiClient:
    """``server``: a plain URL (tests, the emulator); else in-cluster, else KUBECONFIG."""
    if server:
        configuration = client.Configuration(host=server)
        return client.ApiClient(configuration)
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def _decode(data: Mapping[str, str] | None) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (data or {}).items()}


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    async def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        try:
            secret = await asyncio.to_thread(self.core.read_namespaced_secret, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return _decode(secret.data)

    async def write_secret(self, owner: Mapping[str, Any], data: dict[str, str]) -> None:
        """Create, or replace the values of, the owner's credentials Secret (owner reference)."""
        namespace, name = owner["metadata"]["namespace"], secret_name(owner["metadata"]["name"])
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": name, "labels": dict(MANAGED_BY)},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
        kopf.adopt(body, owner=dict(owner))
        try:
            await asyncio.to_thread(self.core.create_namespaced_secret, namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            await asyncio.to_thread(
                self.core.patch_namespaced_secret, name, namespace, {"data": body["data"]}
            )

    async def touch_merchant(self, namespace: str, name: str, plan_revision: str) -> None:
        """Make the Merchant reconcile again (its Plan changed) through its own handler."""
        patch = {"metadata": {"annotations": {"payplane.io/plan-revision": plan_revision}}}
        await asyncio.to_thread(
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            "merchants",
            name,
            patch,
        )

    async def touch_provider(self, namespace: str, name: str, secret_revision: str) -> None:
        """Make the Provider reconcile again (a Secret it references changed)."""
        patch = {"metadata": {"annotations": {"payplane.io/secret-revision": secret_revision}}}
        await asyncio.to_thread(
            self.custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            "providers",
            name,
            patch,
        )

    async def write_config_map(self, namespace: str, name: str, data: dict[str, str]) -> None:
        """Replace the ConfigMap's data (the chart creates it; created here if it is missing)."""
        try:
            await asyncio.to_thread(
                self.core.patch_namespaced_config_map, name, namespace, {"data": data}
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = {"metadata": {"name": name, "labels": dict(MANAGED_BY)}, "data": data}
            await asyncio.to_thread(self.core.create_namespaced_config_map, namespace, body)


class MerchantSecretSink:
    """The reconciler's sink for one Merchant: its ``<name>-credentials`` Secret."""

    def __init__(self, kube: Kube, owner: Mapping[str, Any]) -> None:
        self.kube = kube
        self.owner = owner

    async def read(self, name: str) -> dict[str, str] | None:
        namespace = self.owner["metadata"]["namespace"]
        return await self.kube.read_secret(namespace, secret_name(name))

    async def write(self, name: str, data: dict[str, str]) -> None:
        await self.kube.write_secret(self.owner, data)


class NamespaceSecrets:
    """Reads the Secret key refs of a Provider, in its namespace."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.kube = kube
        self.namespace = namespace

    async def value(self, ref: Mapping[str, str]) -> str:
        data = await self.kube.read_secret(self.namespace, ref["name"])
        if data is None or ref["key"] not in data:
            raise Permanent(
                "SecretNotFound", f"Secret {ref['name']} has no key {ref['key']} (or is missing)."
            )
        return data[ref["key"]]
