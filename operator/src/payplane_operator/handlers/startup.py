"""All of kopf's settings in one place, and the operator's shared state (``memo``)."""

import logging
import random
from typing import Any

import kopf
from payplane_core.clients import MerchantsClient, ProvidersClient, internal_http
from prometheus_client import start_http_server

from payplane_operator.config import Settings
from payplane_operator.kube import Kube, api_client
from payplane_operator.reconcile import Platform
from payplane_operator.routing import routing_for

KOPF_PREFIX = "kopf.payplane.io"


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """A plain URL (KUBERNETES_SERVER: tests, the emulator), else the usual sources."""
    server = Settings().KUBERNETES_SERVER
    if server:
        return kopf.ConnectionInfo(server=server, insecure=True)
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    config = Settings()
    # Progress and the last handled spec live in annotations: the CRDs' status schemas are
    # strict and hold only what the contract says.
    settings.persistence.finalizer = "payplane.io/finalizer"
    # kopf's own annotations under a prefix of their own: kopf hides its prefix from diffs,
    # and payplane.io/rotate-credentials must stay visible.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO
    # One active replica: peers of equal priority would all pause, so each takes a random one.
    settings.peering.name = config.PEERING_NAME
    settings.peering.priority = config.PEERING_PRIORITY or random.randint(1, 2**31 - 1)  # noqa: S311
    settings.peering.mandatory = True
    memo.config = config
    memo.platform = Platform(
        merchants=MerchantsClient(
            internal_http(config.MERCHANTS_URL, signer=config.internal_signer("merchants"))
        ),
        providers=ProvidersClient(
            internal_http(config.PROVIDERS_URL, signer=config.internal_signer("providers"))
        ),
    )
    memo.kube = Kube(api_client(config.KUBERNETES_SERVER))
    memo.routing = routing_for(config, memo.kube)
    memo.secret_revisions = {}  # (namespace, Secret) -> resourceVersion last seen
    if config.METRICS_PORT:
        start_http_server(config.METRICS_PORT, addr=config.HOST)


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    await memo.platform.merchants.aclose()
    await memo.platform.providers.aclose()
