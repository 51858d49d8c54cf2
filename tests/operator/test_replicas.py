"""The operator as real processes: killed with SIGKILL between creating a merchant and writing
its Secret, and run as two replicas at once. Each test has an API server of its own, so the
in-process operator of the other tests never sees these resources."""

import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.operator.conftest import PEERING, operator_env
from tests.operator.test_merchants import (
    MERCHANTS,
    NS,
    PLANS,
    credentials,
    merchant,
    pay,
    plan,
    ready,
    unique,
)
from tests.support.kube import Emulator, wait_for, watching

pytestmark = pytest.mark.timeout(120)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spawn(stack, server: str, log, **env: str) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "payplane_operator", "--all-namespaces"],
        env=os.environ | operator_env(stack, server, **env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


async def merchants_with_ref(stack, uid: str) -> int:
    engine = create_async_engine(stack.database_url("merchants"))
    try:
        async with engine.connect() as conn:
            return await conn.scalar(
                text("SELECT count(*) FROM merchants WHERE external_ref = :uid"), {"uid": uid}
            )
    finally:
        await engine.dispose()


async def test_kill_9_between_merchant_and_secret_converges_on_one_merchant(
    stack, own_api, tmp_path
):
    emu, url, kube = own_api
    plan_name, name = unique("crash"), unique("survivor")
    log = (tmp_path / "operator.log").open("w")
    Emulator.hold_secret_creates = True  # the Secret write will hang: the window to kill in
    # The dead replica stays in the peering until its lease ends; the new one outranks it (as
    # a replica of higher priority would), so it need not wait for that.
    first = spawn(stack, url, log, PEERING_PRIORITY="1")
    try:
        await wait_for(lambda: watching(emu, "merchants", "plans"), timeout=30)
        await kube.create(PLANS, plan(plan_name, 50, 100))
        created = await kube.create(MERCHANTS, merchant(name, plan_name), NS)
        uid = created["metadata"]["uid"]
        await wait_for(lambda: Emulator.held >= 1, timeout=30)
        assert await merchants_with_ref(stack, uid) == 1  # made, its secrets not yet stored
        first.kill()  # SIGKILL: no cleanup, no finalizer, nothing
        first.wait(10)
    finally:
        stop(first)
        Emulator.hold_secret_creates = False
        Emulator.released.set()  # the parked write fails: it never happened

    second = spawn(stack, url, log, PEERING_PRIORITY="100")
    try:
        found = await ready(kube, name)
        keys = await credentials(kube, name)
    finally:
        stop(second)
    assert await merchants_with_ref(stack, uid) == 1
    assert found["status"]["merchantId"] == keys.merchant_id
    assert found["status"]["conditions"][0]["type"] == "CredentialsIssued"
    assert pay(stack, keys).status_code == 201


def reconciles(port: int) -> float:
    text_ = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text_.splitlines()
        if line.startswith('payplane_operator_reconciles_total{kind="Merchant"')
    )


async def test_two_replicas_only_one_acts(stack, own_api, tmp_path):
    emu, url, kube = own_api
    ports = [free_port(), free_port()]
    logs = [(tmp_path / f"replica-{i}.log").open("w") for i in range(2)]
    replicas = [
        spawn(stack, url, logs[i], METRICS_PORT=str(ports[i]), HEALTH_PORT=str(free_port()))
        for i in range(2)
    ]
    try:

        async def both_peered():
            peering = await kube.get("kopf.dev/v1/clusterkopfpeerings", PEERING["metadata"]["name"])
            return len((peering or {}).get("status") or {}) >= 2

        await wait_for(both_peered, timeout=30)
        plan_name = unique("pair")
        await kube.create(PLANS, plan(plan_name, 50, 100))
        names = [unique(f"twin{i}") for i in range(3)]
        for name in names:
            await kube.create(MERCHANTS, merchant(name, plan_name), NS)
        for name in names:
            await ready(kube, name)
        counts = sorted(reconciles(port) for port in ports)
    finally:
        for replica in replicas:
            stop(replica)
    assert counts[0] == 0 and counts[1] >= len(names), counts
