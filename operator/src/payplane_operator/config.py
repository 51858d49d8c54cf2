"""The operator's settings (environment, UPPER_CASE, like every service's)."""

from pathlib import Path

from payplane_core.platform import cluster_url
from payplane_core.settings import ServiceSettings


class Settings(ServiceSettings):
    SERVICE_NAME: str = "operator"  # its internal signature's caller name
    MERCHANTS_URL: str = cluster_url("merchants")
    PROVIDERS_URL: str = cluster_url("providers")
    # Where provider routing goes: the ConfigMap the Envoy pods mount (watched_directory) or,
    # locally, Envoy's dynamic directory itself (its parent holds the local stack's ingress
    # model, ingress.json, that the routing is re-rendered from).
    ROUTING_CONFIGMAP: str = "payplane-ingress-routing"
    ROUTING_NAMESPACE: str = "payplane"
    ROUTING_DIR: Path | None = None
    # kopf peering: replicas with the same name elect one active operator.
    PEERING_NAME: str = "payplane-operator"
    PEERING_PRIORITY: int = 0
    HEALTH_PORT: int = 8120  # liveness: http://0.0.0.0:8120/healthz
    METRICS_PORT: int = 8121  # Prometheus: /metrics
    # How often a Merchant's credentials Secret is checked (a Secret deleted by hand comes back).
    SECRET_CHECK_SECONDS: float = 10.0
    # Back-off while a dependency (merchants, providers) is down.
    RETRY_DELAY_SECONDS: float = 5.0
    # Kubernetes API: in a cluster the pod's service account; else KUBECONFIG or this URL.
    KUBERNETES_SERVER: str | None = None

    @classmethod
    def secret_fields(cls) -> list[str]:
        return ["INTERNAL_SIGNING_KEY"]
