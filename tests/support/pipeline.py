"""Helpers for the async pipeline tests: own RabbitMQ names, outbox rows, queue counting."""

import asyncio
import contextlib
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import httpx
import uvicorn
from payplane_core.ids import new_id
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.internal import LOOPBACK_ALLOWLIST, GatewayAuth, internal_env

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/payplane_test"


def topology_env(tag: str | None = None) -> dict[str, str]:
    """RabbitMQ names of our own in the shared test vhost (an e2e stack may run there too)."""
    tag = tag or uuid.uuid4().hex[:8]
    return {
        "AMQP_URL": AMQP_URL,
        "AMQP_EXCHANGE": f"unit.{tag}.payments",
        "NOTIFIER_QUEUE": f"unit.{tag}.notifier",
        "DEAD_LETTER_EXCHANGE": f"unit.{tag}.dlx",
        "DEAD_LETTER_QUEUE": f"unit.{tag}.dlq",
        # The relay declares the providers' queue too: ours, never the stack's.
        "PROVIDERS_QUEUE": f"unit.{tag}.providers",
        "PROVIDERS_DEAD_LETTER": f"unit.{tag}.providers.dlx",
        "PROVIDERS_QUEUE_REPLACES": "",
    }


async def delete_topology(env: dict[str, str]) -> None:
    connection = await aio_pika.connect(AMQP_URL, timeout=5)
    async with connection:
        channel = await connection.channel()
        for queue in (
            env["NOTIFIER_QUEUE"],
            env["DEAD_LETTER_QUEUE"],
            env["PROVIDERS_QUEUE"],
            env["PROVIDERS_DEAD_LETTER"],
        ):
            await channel.queue_delete(queue)
        for exchange in (
            env["AMQP_EXCHANGE"],
            env["DEAD_LETTER_EXCHANGE"],
            env["PROVIDERS_DEAD_LETTER"],
        ):
            await channel.exchange_delete(exchange)


async def queue_depth(queue_name: str) -> int:
    connection = await aio_pika.connect(AMQP_URL, timeout=5)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(queue_name, passive=True)
        return queue.declaration_result.message_count


async def take_all(queue_name: str, *, idle_seconds: float = 1.0) -> list[aio_pika.IncomingMessage]:
    """Consume (and ack) every message until the queue stays idle; returns them in order."""
    taken: list[aio_pika.IncomingMessage] = []
    connection = await aio_pika.connect(AMQP_URL, timeout=5)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=500)
        queue = await channel.declare_queue(queue_name, passive=True)
        async with queue.iterator() as messages:
            while True:
                try:
                    message = await asyncio.wait_for(anext(messages), timeout=idle_seconds)
                except TimeoutError:
                    break
                await message.ack()
                taken.append(message)
    return taken


def duplicates(messages: list[aio_pika.IncomingMessage]) -> dict[str, int]:
    counts = Counter(m.message_id for m in messages)
    return {k: v for k, v in counts.items() if v > 1}


async def insert_outbox_events(
    engine: AsyncEngine,
    count: int,
    *,
    routing_key: str = "payment.pending",
    event_type: str | None = None,
    merchant_id: str = "mer_test",
) -> list[str]:
    """Outbox rows as the payments service writes them (for relay-only tests and the bench);
    ``event_type`` (default: the routing key) is the body's, for a row routed elsewhere."""
    event_type = event_type or routing_key
    at = datetime.now(UTC)
    rows = []
    for _ in range(count):
        event_id, payment_id = new_id("evt"), new_id("pay")
        payload = {
            "type": event_type,
            "timestamp": at.isoformat(),
            "data": {
                "id": payment_id,
                "merchant_id": merchant_id,
                "amount": 1000,
                "currency": "EUR",
                "status": event_type.split(".", 1)[-1],
            },
        }
        rows.append(
            {
                "id": event_id,
                "payment_id": payment_id,
                "merchant_id": merchant_id,
                "event_type": event_type,
                "routing_key": routing_key,
                "payload": json.dumps(payload),
                "headers": json.dumps({"x-request-id": f"req-{event_id}"}),
                "at": at,
            }
        )
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO outbox_events (id, payment_id, merchant_id, event_type, routing_key,"
                " payload, headers, state, attempts, next_retry_at, created_at) VALUES (:id,"
                " :payment_id, :merchant_id, :event_type, :routing_key, CAST(:payload AS jsonb),"
                " CAST(:headers AS jsonb), 'pending', 0, :at, :at)"
            ),
            rows,
        )
    return [r["id"] for r in rows]


async def outbox_states(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT state, count(*) FROM outbox_events GROUP BY state"))
        return {state: n for state, n in rows}


async def wait_until(predicate, *, within: float, interval: float = 0.05, what: str = "condition"):
    """Poll a predicate (sync or async) until it gives something truthy; fail after ``within``."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(interval)


# -- real HTTP servers in the test's event loop -----------------------------------------------


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # leave pytest's signal handlers alone
        yield


@contextlib.asynccontextmanager
async def serve(app) -> AsyncIterator[str]:
    """Serve an ASGI app on 127.0.0.1 (random port) over real HTTP; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = _QuietServer(
        uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=1)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await wait_until(_started(server, task), within=15, what="server start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, timeout=5)
        sock.close()


def _started(server: uvicorn.Server, task: asyncio.Task):
    async def check() -> bool:
        if task.done():
            task.result()  # raise its startup error
        return server.started

    return check


@dataclass
class Received:
    webhook_id: str
    merchant: str
    body: bytes
    verified: bool
    status: int
    at: float  # time.time() when it arrived
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Receiver:
    """A merchant's webhook endpoint: verifies every request with the official library.

    ``fail_first[name] = n`` answers 500 to the first n attempts of each webhook-id for that
    merchant; ``fail_always`` holds merchants that always answer 500; ``delay`` slows answers.
    """

    secrets: dict[str, str] = field(default_factory=dict)
    fail_first: dict[str, int] = field(default_factory=dict)
    fail_always: set[str] = field(default_factory=set)
    delay: float = 0.0
    log: list[Received] = field(default_factory=list)
    base_url: str = ""
    _seen: dict[str, int] = field(default_factory=dict)

    def reset(self) -> None:
        self.log.clear()
        self._seen.clear()
        self.fail_first.clear()
        self.fail_always.clear()
        self.delay = 0.0

    def url(self, merchant: str) -> str:
        return f"{self.base_url}/hooks/{merchant}"

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hooks/{merchant}", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        merchant = request.path_params["merchant"]
        try:
            body = await request.body()
        except ClientDisconnect:  # the notifier was killed mid-request
            return Response(status_code=499)
        webhook_id = request.headers.get("webhook-id", "")
        try:
            Webhook(self.secrets[merchant]).verify(body, dict(request.headers))
            verified = True
        except (KeyError, WebhookVerificationError):
            verified = False
        if self.delay:
            await asyncio.sleep(self.delay)
        seen = self._seen.get(webhook_id, 0)
        self._seen[webhook_id] = seen + 1
        if not verified:
            status = 400
        elif merchant in self.fail_always or seen < self.fail_first.get(merchant, 0):
            status = 500
        else:
            status = 204
        self.log.append(
            Received(
                webhook_id, merchant, body, verified, status, time.time(), dict(request.headers)
            )
        )
        return Response(status_code=status)

    # -- what the merchant saw ----------------------------------------------------------------
    def delivered_ids(self) -> set[str]:
        return {r.webhook_id for r in self.log if r.verified and r.status < 300}

    def unverified(self) -> list[Received]:
        return [r for r in self.log if not r.verified]

    def undedupable(self) -> list[str]:
        """webhook-ids that arrived with different bodies (a merchant could not dedupe them)."""
        bodies: dict[str, set[bytes]] = {}
        for r in self.log:
            bodies.setdefault(r.webhook_id, set()).add(r.body)
        return [k for k, v in bodies.items() if len(v) > 1 or not k]

    def attempts_for(self, webhook_id: str) -> list[Received]:
        return [r for r in self.log if r.webhook_id == webhook_id]


@contextlib.asynccontextmanager
async def running_receiver(**options) -> AsyncIterator[Receiver]:
    receiver = Receiver(**options)
    async with serve(receiver.app()) as url:
        receiver.base_url = url
        yield receiver


# -- worker processes (for kill -9) ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class WorkerProcess:
    """A relay or notifier as a real OS process (uvicorn), so it can be ``kill -9``-ed."""

    factory: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYPLANE_")}
        env |= {"ENVIRONMENT": "test", "LOG_LEVEL": "WARNING"} | self.env | {"PORT": str(self.port)}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own argv
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--factory",
                    self.factory,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--no-access-log",
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    async def wait_ready(self, within: float = 20) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}") as client:

            async def ready() -> bool:
                if self.process.poll() is not None:
                    raise AssertionError(f"{self.factory} exited; see {self.log_path}")
                try:
                    return (await client.get("/ready", timeout=1)).status_code == 200
                except httpx.HTTPError:
                    return False

            await wait_until(ready, within=within, interval=0.1, what=f"{self.factory} ready")

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def kill9(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=5)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill9()


# -- merchants and worker settings ----------------------------------------------------------


async def create_merchant(receiver: Receiver, merchants_url: str) -> tuple[str, str]:
    name = f"wk-{uuid.uuid4().hex[:10]}"
    async with httpx.AsyncClient(
        base_url=merchants_url,
        auth=GatewayAuth(audience="merchants", caller="cli", scopes=(), key_id=""),
        timeout=10,
    ) as client:
        response = await client.post(
            "/internal/v1/merchants", json={"name": name, "webhook_url": receiver.url(name)}
        )
    assert response.status_code == 201, response.text
    credentials = response.json()["credentials"]
    receiver.secrets[name] = credentials["webhook_secret"]
    return credentials["merchant_id"], name


MERCHANTS_REDIS_URL = "redis://127.0.0.1:6379/13"  # the workers suite's own Redis db


def worker_env(outbox_url: str, notifier_url: str, merchants_url: str, names: dict) -> dict:
    """Settings of a test pipeline: compressed schedule, short leases, our own queue names."""
    return {
        **names,
        **internal_env("notifier"),
        "WEBHOOK_URL_ALLOWLIST": ",".join(LOOPBACK_ALLOWLIST),
        "OUTBOX_DATABASE_URL": outbox_url,
        "DATABASE_URL": notifier_url,
        "MERCHANTS_URL": merchants_url,
        # Where the merchants service bumps a merchant's version: the notifier's cache of
        # webhook targets follows it (without it, every delivery asks merchants).
        "REDIS_URL": MERCHANTS_REDIS_URL,
        # Notifications wake the relay; its fallback poll picks up a killed relay's rows soon
        # after their (short) lease.
        "RELAY_FALLBACK_POLL_SECONDS": "0.5",
        "RELAY_LEASE_SECONDS": "2",
        "RETRY_POLL_INTERVAL_SECONDS": "0.05",
        "DELIVERY_LEASE_SECONDS": "3",
        "WEBHOOK_TIMEOUT_SECONDS": "2",
        "WEBHOOK_DEFER_SECONDS": "0.5",  # the wait for a slot + the attempt < the lease
        "WEBHOOK_RETRY_SCHEDULE_SECONDS": "0.3,0.6,1.2",
        "MERCHANT_CACHE_SECONDS": "30",
    }


async def pay_and_settle(
    payments_app, merchant_ids: list[str], count: int, *, concurrency: int = 8
) -> float:
    """``count`` payments through the payments API, each pending -> processing ->
    succeeded|failed (3 outbox events each). Returns the seconds taken."""
    from tests.support.payments import client_for

    started = time.perf_counter()
    gate = asyncio.Semaphore(concurrency)
    async with contextlib.AsyncExitStack() as stack:
        merchants = [
            await stack.enter_async_context(client_for(payments_app, merchant_id=m))
            for m in merchant_ids
        ]
        internal = await stack.enter_async_context(client_for(payments_app, caller="providers"))

        async def one(index: int) -> None:
            async with gate:
                created = await merchants[index % len(merchants)].post(
                    "/api/v1/payments",
                    json={"amount": 100 + index, "currency": "EUR"},
                    headers={"x-request-id": f"req-{index}"},
                )
                assert created.status_code == 201, (created.status_code, created.text)
                path = f"/internal/v1/payments/{created.json()['id']}/events"
                for status in ("processing", "succeeded" if index % 2 else "failed"):
                    moved = await internal.post(
                        path, json={"type": f"provider.{status}", "status": status, "source": "t"}
                    )
                    assert moved.status_code == 200, moved.text

        await asyncio.gather(*(one(i) for i in range(count)))
    return time.perf_counter() - started
