"""Provider → Envoy routing: each Provider's callback bucket on the contract's provider-webhook
route, rendered by ``payplane_ingress`` into what Envoy watches (``watched_directory``, no
restart): the routing ConfigMap the ingress pods mount, or locally Envoy's dynamic directory.

The whole routing is rendered from every live Provider at once (kopf's index), under a lock,
so concurrent reconciles converge on the last state rather than on whichever wrote last.
"""

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from payplane_ingress import files, kubernetes
from payplane_ingress.model import Ingress, with_providers

from payplane_operator.config import Settings
from payplane_operator.kube import Kube

# name -> (requests per second, burst) of its callbacks, or None for the default bucket.
ProviderLimits = Mapping[str, tuple[int, int] | None]


def webhook_limit(spec: Mapping[str, Any]) -> tuple[int, int] | None:
    limit = spec.get("webhookRateLimit")
    return (limit["requestsPerSecond"], limit["burst"]) if limit else None


class Target(Protocol):
    async def write(self, ingress: Ingress) -> None: ...


class ConfigMapTarget:
    """In a cluster: the ConfigMap mounted at Envoy's watched directory."""

    def __init__(self, kube: Kube, namespace: str, name: str) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name

    async def write(self, ingress: Ingress) -> None:
        data = kubernetes.routing_files(ingress)
        await self.kube.write_config_map(self.namespace, self.name, data)


class DirectoryTarget:
    """Locally: Envoy's dynamic directory itself (written by atomic rename, clusters first)."""

    def __init__(self, dynamic_dir: Path) -> None:
        self.dynamic_dir = dynamic_dir

    async def write(self, ingress: Ingress) -> None:
        await asyncio.to_thread(files.write_dynamic, ingress, self.dynamic_dir)


class Routing:
    def __init__(self, base: Ingress, target: Target) -> None:
        self.base = base
        self.target = target
        self._lock = asyncio.Lock()
        self._published: Ingress | None = None

    async def publish(self, providers: ProviderLimits) -> None:
        """Render the routing for exactly these providers; nothing is written if unchanged."""
        async with self._lock:
            ingress = with_providers(self.base, providers)
            if ingress == self._published:
                return
            await self.target.write(ingress)
            self._published = ingress


def routing_for(config: Settings, kube: Kube) -> Routing:
    """Locally (``ROUTING_DIR``): the model the local stack rendered Envoy from, kept beside
    that directory; in a cluster: the chart's ingress (Service names, STRICT_DNS clusters)."""
    if config.ROUTING_DIR is not None:
        base = files.read_model(config.ROUTING_DIR.parent)
        return Routing(base, DirectoryTarget(config.ROUTING_DIR))
    target = ConfigMapTarget(kube, config.ROUTING_NAMESPACE, config.ROUTING_CONFIGMAP)
    # The chart gives it the collector's OTLP endpoint, if any: Envoy's tracer stays on.
    return Routing(kubernetes.cluster_ingress(os.environ), target)
