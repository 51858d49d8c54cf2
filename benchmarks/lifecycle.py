"""A payment's whole life under open-loop load, and what it costs in CPU per process.

Signed creates go through Envoy at a constant arrival rate (50, 100, 150 and 200 per second,
30 s each): a load generator in its own process starts every request on schedule whatever the
latency of the earlier ones (no coordinated omission). The merchant's endpoint, in another
process, verifies every webhook with the official ``standardwebhooks`` library. Each rate runs
until every created payment's final webhook is verified (the drain), and reports:

- achieved create rate, create latency p50/p99, failed creates (non-201 or transport error),
  payments lost (created, no final webhook after the drain) and the end-to-end rate;
- commit → verified final webhook p50/p99 (the payment's ``created_at`` to the moment the
  merchant verified the signature; both clocks are this machine's);
- CPU ms per payment of every server process, from /proc utime+stime deltas over the run plus
  the drain (PostgreSQL, RabbitMQ and Redis with their children; the bench's own client and
  merchant endpoint are not counted).

A rate the platform cannot keep up with (fewer than 95 % of the offered creates answered 201,
or payments unfinished after the drain) is where it saturates: higher rates are not offered.

``PAYPLANE_BENCH_QUICK=1``: 10 s at 25 and 50 per second only; ``PAYPLANE_BENCH_RATES=25,50``
chooses the rates.
``PAYPLANE_BENCH_PROFILE=DIR``: py-spy records every Python server process during each rate
(flame graphs in DIR; the profiler's own CPU is then in the figures, so compare with care);
``PAYPLANE_BENCH_PROFILE_FORMAT=raw`` writes collapsed stacks instead (one line per stack and
its sample count: to add up by package or function with a few lines of Python or grep);
``PAYPLANE_BENCH_PROFILE_RATE`` samples per second (50 unless told).
"""

import asyncio
import json
import multiprocessing
import os
import secrets
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from payplane_cli import local
from payplane_cli.stack import PROCESSES, Stack

from benchmarks.cpu import busy_share, cpu_ms, machine_ticks, snapshot

QUICK = os.environ.get("PAYPLANE_BENCH_QUICK") == "1"
RATES = tuple(
    int(rate) for rate in os.environ.get("PAYPLANE_BENCH_RATES", "").split(",") if rate
) or ((25, 50) if QUICK else (50, 100, 150, 200))
SECONDS = 10 if QUICK else 30
DRAIN_SECONDS = 60
WARMUP = (10, 3)  # per second, seconds: connections, caches and JIT-less Python warmed first
PROFILE = os.environ.get("PAYPLANE_BENCH_PROFILE")
PROFILE_FORMAT = os.environ.get("PAYPLANE_BENCH_PROFILE_FORMAT", "flamegraph")
PROFILE_RATE = os.environ.get("PAYPLANE_BENCH_PROFILE_RATE", "50")  # samples per second
PROFILE_SUFFIX = {"flamegraph": "svg", "raw": "txt", "speedscope": "json"}
FINAL = ("payment.succeeded", "payment.failed")


# -- the merchant's endpoint, in its own process ------------------------------------------------
def _merchant_endpoint(port_out, arrivals, secret_in) -> None:
    from aiohttp import web
    from standardwebhooks import Webhook

    async def serve() -> None:
        hooks: list[Webhook] = []

        async def receive(request: web.Request) -> web.Response:
            body = await request.read()
            if not hooks:
                hooks.append(Webhook(secret_in.recv()))
            event = hooks[0].verify(body, dict(request.headers))  # raises: a 500 gets retried
            if event["type"] in FINAL:
                arrivals.put((event["data"]["id"], time.time()))
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hooks", receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_out.send(site._server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(serve())


# -- the open-loop load generator, in its own process -------------------------------------------
@dataclass(frozen=True)
class Offered:
    """One create as sent: what the generator needs, signed before the clock starts."""

    headers: dict[str, str]
    body: bytes


def sign_creates(url: str, creds: dict[str, str], count: int) -> list[Offered]:
    import requests

    from benchmarks.signing import merchant_auth

    auth = merchant_auth(creds)
    offered = []
    for _ in range(count):
        body = json.dumps({"amount": 1000, "currency": "EUR"}).encode()
        request = requests.Request(
            "POST",
            url,
            data=body,
            headers={
                "Authorization": f"Bearer {creds['api_key']}",
                "Content-Type": "application/json",
                "Idempotency-Key": secrets.token_hex(8),
            },
        ).prepare()
        auth(request)
        offered.append(Offered(dict(request.headers), body))
    return offered


def _generate(url: str, offered: list[Offered], rate: int, results) -> None:
    import aiohttp

    async def run() -> list[tuple[int | str, float, str | None, str | None]]:
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:

            async def create(item: Offered, scheduled: float):
                try:
                    async with client.post(url, data=item.body, headers=item.headers) as answer:
                        payload = await answer.read()
                        latency = time.perf_counter() - scheduled
                        if answer.status != 201:
                            return answer.status, latency, None, None
                        created = json.loads(payload)
                        return 201, latency, created["id"], created["created_at"]
                except (aiohttp.ClientError, TimeoutError) as exc:
                    return type(exc).__name__, time.perf_counter() - scheduled, None, None

            tasks = []
            start = time.perf_counter() + 0.2
            for i, item in enumerate(offered):
                scheduled = start + i / rate  # latency counts from the schedule, not the send
                await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
                tasks.append(asyncio.create_task(create(item, scheduled)))
            answers = await asyncio.gather(*tasks)
            results.send((time.perf_counter() - start, answers))
            return answers

    asyncio.run(run())


# -- one rate -----------------------------------------------------------------------------------
def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Outcome:
    rate: int
    achieved: float
    create_p50: float
    create_p99: float
    webhook_p50: float
    webhook_p99: float
    created: int
    failed: Counter
    unfinished: int
    end_to_end: float
    cpu: dict[str, float]
    busiest: tuple[str, float]  # while offered: the Python server nearest a full core (its loop)
    machine: float  # the machine's busy share meanwhile (both cores, the client included)

    def line(self) -> str:
        failed = sum(self.failed.values())
        total = sum(self.cpu.values()) / max(1, self.created)
        return (
            f"  {self.rate:>3}/s offered: {self.achieved:.0f}/s created, create p50 "
            f"{self.create_p50:.0f} ms p99 {self.create_p99:.0f} ms, commit→verified webhook "
            f"p50 {self.webhook_p50:.0f} ms p99 {self.webhook_p99:.0f} ms, "
            f"{self.end_to_end:.0f} payments/s end to end, failed {failed}"
            f"{' ' + str(dict(self.failed)) if failed else ''}, unfinished {self.unfinished}, "
            f"CPU {total:.1f} ms per payment; while offered: machine {self.machine:.0%} busy, "
            f"busiest {self.busiest[0]} at {self.busiest[1]:.0%} of a core"
        )

    @property
    def saturated(self) -> bool:
        return self.created < 0.95 * self.rate * SECONDS or self.unfinished > 0


def _profile(stack: Stack, rate: int) -> list:
    import subprocess

    out = Path(PROFILE)
    out.mkdir(parents=True, exist_ok=True)
    _, groups = snapshot(stack)
    return [
        subprocess.Popen(  # noqa: S603 - our own argv
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "--nonblocking",
                "--rate",
                PROFILE_RATE,
                "--format",
                PROFILE_FORMAT,
                "--pid",
                str(members[0]),
                "--output",
                str(out / f"{name}-{rate}.{PROFILE_SUFFIX[PROFILE_FORMAT]}"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, members in groups.items()
        if name in PROCESSES and name != "envoy"
    ]


def offer(
    stack: Stack, creds: dict[str, str], arrivals, rate: int, seconds: int = SECONDS
) -> Outcome:
    url = stack.url("envoy") + "/api/v1/payments"
    offered = sign_creates(url, creds, rate * seconds)
    profilers = _profile(stack, rate) if PROFILE else []
    before, _ = snapshot(stack)
    machine_before = machine_ticks()
    receive_results, send_results = multiprocessing.Pipe(duplex=False)
    generator = multiprocessing.Process(
        target=_generate, args=(url, offered, rate, send_results), daemon=True
    )
    t0 = time.time()
    generator.start()
    seconds, answers = receive_results.recv()
    generator.join()
    # Saturation shows here, not over the drain: each Python server is one event loop, so the
    # first to need a whole core is the first to fall behind (unless the machine is full first).
    during, _ = snapshot(stack)
    machine = busy_share(machine_before, machine_ticks())
    window_ms = (time.time() - t0) * 1000
    loops = {g: ms for g, ms in cpu_ms(before, during).items() if g in PROCESSES and g != "envoy"}
    busiest = max(loops.items(), key=lambda item: item[1])
    created = {pid: at for status, _, pid, at in answers if status == 201}
    verified: dict[str, float] = {}
    deadline = time.monotonic() + DRAIN_SECONDS
    while not created.keys() <= verified.keys() and time.monotonic() < deadline:
        while not arrivals.empty():
            payment, at = arrivals.get()
            verified.setdefault(payment, at)
        time.sleep(0.05)
    after, _ = snapshot(stack)
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)  # py-spy writes its flame graph on SIGINT
        profiler.wait()
    done = [verified[p] for p in created if p in verified]
    lags = [(verified[p] - _epoch(at)) * 1000 for p, at in created.items() if p in verified]
    latencies = [latency * 1000 for status, latency, _, _ in answers if status == 201]
    return Outcome(
        rate=rate,
        achieved=len(created) / seconds,
        create_p50=_pct(latencies, 0.5),
        create_p99=_pct(latencies, 0.99),
        webhook_p50=_pct(lags, 0.5),
        webhook_p99=_pct(lags, 0.99),
        created=len(created),
        failed=Counter(status for status, *_ in answers if status != 201),
        unfinished=len(created) - len(done),
        end_to_end=len(done) / (max(done) - t0) if done else 0.0,
        cpu=cpu_ms(before, after),
        busiest=(busiest[0], busiest[1] / window_ms),
        machine=machine,
    )


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def table(outcomes: list[Outcome]) -> str:
    groups = sorted(
        outcomes[0].cpu, key=lambda g: -sum(o.cpu.get(g, 0) / max(1, o.created) for o in outcomes)
    )
    head = "  | process | " + " | ".join(f"{o.rate}/s" for o in outcomes) + " |"
    rule = "  |---|" + "---|" * len(outcomes)
    rows = [
        f"  | {group} | "
        + " | ".join(f"{o.cpu.get(group, 0) / max(1, o.created):.1f}" for o in outcomes)
        + " |"
        for group in groups
    ]
    total = (
        "  | **total** | "
        + " | ".join(f"**{sum(o.cpu.values()) / max(1, o.created):.1f}**" for o in outcomes)
        + " |"
    )
    return "\n".join(["  CPU ms per payment, by process:", head, rule, *rows, total])


def run_bench() -> None:
    from benchmarks.flow import unlimited_merchant

    stack = Stack.for_bench()
    local.fresh_up(stack)
    context = multiprocessing.get_context("spawn")
    arrivals = context.Queue()
    port_in, port_out = context.Pipe(duplex=False)
    secret_in, secret_out = context.Pipe(duplex=False)
    endpoint = context.Process(
        target=_merchant_endpoint, args=(port_out, arrivals, secret_in), daemon=True
    )
    endpoint.start()
    try:
        receiver = _Endpoint(f"http://127.0.0.1:{port_in.recv()}/hooks")
        creds = unlimited_merchant(stack, receiver, "bench-lifecycle")
        secret_out.send(creds["webhook_secret"])
        offer(stack, creds, arrivals, WARMUP[0], seconds=WARMUP[1])
        outcomes = []
        for rate in RATES:
            outcomes.append(offer(stack, creds, arrivals, rate))
            print(outcomes[-1].line(), flush=True)
            if outcomes[-1].saturated:
                print(f"  saturated at {rate}/s: higher rates not offered")
                break
        print(table(outcomes))
    finally:
        endpoint.terminate()
        local.down(stack)


@dataclass
class _Endpoint:
    """What ``unlimited_merchant`` needs of a receiver: its URL (and a place for the secret)."""

    url: str
    secret: str | None = None


if __name__ == "__main__":
    run_bench()
