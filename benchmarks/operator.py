"""The operator: 100 Merchants applied at once → all Ready. Time to the last Ready and p50/p99
per merchant (apply → Ready=True in status). Target: all 100 within 10 s on this machine.

The real kopf runtime in this process, KMock's emulator as the API server (tests/support/kube),
the bench stack's merchants service, PostgreSQL and Redis.
"""

import asyncio
import contextlib
import os
import statistics
import time

import kopf
from payplane_cli import local
from payplane_cli.stack import Stack, internal_key_name

from tests.support.kube import KubeClient, emulator, wait_for, watching

MERCHANTS = 100
NS = "bench"
PEERING = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering"}


def ready_at(found: dict) -> bool:
    conditions = found.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


async def _start_operator(stack: Stack, url: str) -> tuple[asyncio.Event, asyncio.Task]:
    """The operator in this process, against the emulator and the bench stack's services."""
    os.environ.update(
        KUBERNETES_SERVER=url,
        MERCHANTS_URL=stack.url("merchants"),
        PROVIDERS_URL=stack.url("providers"),
        INTERNAL_SIGNING_KEY=stack.secrets()[internal_key_name("operator")],
        METRICS_PORT="0",
    )
    import payplane_operator.handlers  # noqa: F401, PLC0415 - registers the handlers

    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(kopf.operator(clusterwide=True, stop_flag=stop, ready_flag=ready))
    await asyncio.wait_for(ready.wait(), 30)
    return stop, task


async def _create_plan(kube: KubeClient) -> None:
    plan = {
        "displayName": "Bench",
        "rateLimit": {"requestsPerSecond": 100, "burst": 200},
        "quota": {"paymentsPerMonth": 10**6},
    }
    await kube.create(
        "payplane.io/v1alpha1/plans",
        {"apiVersion": "payplane.io/v1alpha1", "kind": "Plan", "metadata": {"name": "bench"}}
        | {"spec": plan},
    )


async def _create_merchants(kube: KubeClient, names: list[str]) -> None:
    merchant = {"apiVersion": "payplane.io/v1alpha1", "kind": "Merchant"}
    await asyncio.gather(
        *(
            kube.create(
                "payplane.io/v1alpha1/merchants",
                merchant | {"metadata": {"name": n, "namespace": NS}, "spec": {"plan": "bench"}},
                NS,
            )
            for n in names
        )
    )


async def measure(stack: Stack) -> dict[str, float]:
    async with emulator() as (emu, url):
        kube = KubeClient(url)
        await kube.create(
            "kopf.dev/v1/clusterkopfpeerings", PEERING | {"metadata": {"name": "payplane-operator"}}
        )
        stop, task = await _start_operator(stack, url)
        await wait_for(lambda: watching(emu, "merchants", "plans"), timeout=30)
        await _create_plan(kube)
        names = [f"bench-{time.time_ns() % 10**8}-{i}" for i in range(MERCHANTS)]
        started = time.perf_counter()
        await _create_merchants(kube, names)
        done: dict[str, float] = {}

        async def all_ready() -> bool:
            for item in await kube.list("payplane.io/v1alpha1/merchants", NS):
                name = item["metadata"]["name"]
                if name in names and name not in done and ready_at(item):
                    done[name] = time.perf_counter() - started
            return len(done) == MERCHANTS

        await wait_for(all_ready, timeout=120, interval=0.05)
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
        await kube.aclose()
    times = sorted(done.values())
    return {
        "last": times[-1],
        "p50": statistics.median(times),
        "p99": times[int(0.99 * (len(times) - 1))],
    }


def run_bench() -> None:
    stack = Stack.for_bench()
    local.fresh_up(stack, ["merchants"])
    try:
        figures = asyncio.run(measure(stack))
    finally:
        local.down(stack)
    verdict = "meets" if figures["last"] <= 10 else "MISSES"
    print(
        f"{MERCHANTS} Merchants applied at once: last Ready after {figures['last']:.2f} s "
        f"({verdict} the 10 s target); per merchant p50 {figures['p50']:.2f} s, "
        f"p99 {figures['p99']:.2f} s"
    )
