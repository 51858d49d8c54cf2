"""The operator's world: KMock's emulator as the API server, kopf (the real runtime) running
the payplane_operator handlers, and the real platform (test stack: merchants, gateway,
payments, providers, Envoy; PostgreSQL and Redis)."""

import asyncio
import contextlib
import os

import kopf
import pytest
from payplane_cli import local
from payplane_cli.stack import Stack, internal_key_name

from tests.support.kube import KubeClient, emulator, wait_for, watching

PLATFORM = [
    "payments",
    "merchants",
    "gateway",
    "sim-a",
    "sim-b",
    "providers",
    "webhooks",
    "envoy",
]
PEERING = {
    "apiVersion": "kopf.dev/v1",
    "kind": "ClusterKopfPeering",
    "metadata": {"name": "payplane-operator"},
}


@pytest.fixture(scope="package")
def stack() -> Stack:
    stack = Stack.for_tests()
    local.fresh_up(stack, PLATFORM)
    yield stack
    local.down(stack)


def operator_env(stack: Stack, server: str, **extra: str) -> dict[str, str]:
    return {
        "KUBERNETES_SERVER": server,
        "MERCHANTS_URL": stack.url("merchants"),
        "PROVIDERS_URL": stack.url("providers"),
        "INTERNAL_SIGNING_KEY": stack.secrets()[internal_key_name("operator")],
        "METRICS_PORT": "0",
        "SECRET_CHECK_SECONDS": "1",
        "RETRY_DELAY_SECONDS": "1",
        "ROUTING_DIR": str(stack.state_dir / "envoy" / "dynamic"),
    } | extra


@pytest.fixture(scope="package")
async def api():
    async with emulator() as (emu, url):
        kube = KubeClient(url)
        await kube.create("kopf.dev/v1/clusterkopfpeerings", PEERING)
        yield emu, url, kube
        await kube.aclose()


@pytest.fixture
async def own_api():
    """An API server of the test's own, so the in-process operator never sees its resources."""
    async with emulator() as (emu, url):
        kube = KubeClient(url)
        await kube.create("kopf.dev/v1/clusterkopfpeerings", PEERING)
        yield emu, url, kube
        await kube.aclose()


@pytest.fixture(scope="package")
async def kube(api):
    return api[2]


@pytest.fixture(scope="package")
async def operator(stack, api):
    """kopf in this event loop, cluster-wide, handlers of payplane_operator registered."""
    _, url, _ = api
    saved = dict(os.environ)  # the operator reads its settings from the environment
    os.environ.update(operator_env(stack, url))
    import payplane_operator.handlers  # noqa: F401 - registers the handlers

    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(kopf.operator(clusterwide=True, stop_flag=stop, ready_flag=ready))
    await asyncio.wait_for(ready.wait(), 30)
    await wait_for(lambda: watching(api[0], "merchants", "providers", "plans"), timeout=30)
    yield task
    stop.set()
    with contextlib.suppress(asyncio.CancelledError):  # how kopf ends on its stop flag
        await asyncio.wait_for(task, 30)
    # Give later packages their environment back: a leaked MERCHANTS_URL made the providers
    # service under test consult a merchants service that is not running.
    os.environ.clear()
    os.environ.update(saved)
