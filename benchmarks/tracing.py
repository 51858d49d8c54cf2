"""The cost of tracing: create throughput with the OpenTelemetry SDK exporting (OTLP/HTTP to a
local sink) every span, and 10 % of traces (standard sampler variables), against the same
service with tracing off, interleaved in one run so all see the same machine.
Target: under 15 % fewer creates per second.

Each mode's figure is the median of its rounds (one slow round, from whatever else the shared
machine did then, moves it little), beside the payments process's own CPU time per create
(its /proc counters), which the other processes on the machine disturb less than throughput."""

import asyncio
import dataclasses
import os
import statistics
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from payplane_cli import local
from payplane_cli.stack import REPO, Stack
from payplane_core.ids import new_id

from benchmarks.load import run
from benchmarks.payments import CONCURRENCY, signed_create

# Short rounds, each mode once per round in a rotating order: the shared machine's drift and
# a mode's position in the round fall on every mode alike (two long rounds moved by ±15 %).
ROUNDS = 10
PER_ROUND = 500


class _Sink(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that accepts and drops spans (the collector is not our cost)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def run_bench() -> None:
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    plain = Stack.for_bench()
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_port}"}

    def traced(name: str, shift: int, env: dict[str, str]) -> Stack:
        return dataclasses.replace(
            plain,
            name=f"bench-{name}",
            state_dir=REPO / ".local" / f"bench-{name}-stack",
            port_offset=plain.port_offset + shift,
            db_prefix=f"payplane_bench{name}_",
            extra_env=endpoint | env,
        )

    stacks = {
        "off": plain,
        "exporting": traced("all", 100, {}),
        # What production runs: Envoy decides for 10 % of requests and services follow it
        # (here the service decides, as nothing upstream sends a traceparent).
        "exporting 10 %": traced(
            "ratio",
            200,
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
        ),
    }
    try:
        for stack in stacks.values():
            local.fresh_up(stack, ["payments"])
        merchant = new_id("mer")
        rounds: dict[str, list[tuple[float, float]]] = {mode: [] for mode in stacks}
        for mode, stack in stacks.items():  # warm up both
            warm = [signed_create(stack, merchant) for _ in range(300)]
            asyncio.run(run(f"warmup {mode}", warm, CONCURRENCY, lambda s: s == 201))
        modes = list(stacks)
        for round_ in range(ROUNDS):
            for mode in modes[round_ % 3 :] + modes[: round_ % 3]:
                stack = stacks[mode]
                creates = [signed_create(stack, merchant) for _ in range(PER_ROUND)]
                cpu = _cpu_seconds(stack.pid_of("payments"))
                result = asyncio.run(
                    run(f"POST /api/v1/payments, tracing {mode}", creates, CONCURRENCY, _created)
                )
                cpu = _cpu_seconds(stack.pid_of("payments")) - cpu
                print(f"{result.line()}  {cpu / result.requests * 1e6:.0f} us CPU/create")
                rounds[mode].append((result.rps, cpu / result.requests * 1e6))
        _summary(rounds)
    finally:
        for stack in stacks.values():
            local.down(stack)
        sink.shutdown()


def _summary(rounds: dict[str, list[tuple[float, float]]]) -> None:
    rps = {mode: statistics.median(r for r, _ in values) for mode, values in rounds.items()}
    cpu = {mode: statistics.median(c for _, c in values) for mode, values in rounds.items()}
    print(f"  tracing off: {rps['off']:.0f} req/s, {cpu['off']:.0f} us CPU/create (medians)")
    for mode in ("exporting", "exporting 10 %"):
        print(
            f"  {mode}: {rps[mode]:.0f} req/s, {1 - rps[mode] / rps['off']:.1%} fewer creates"
            f" per second (target < 15 %); {cpu[mode]:.0f} us CPU/create,"
            f" {cpu[mode] / cpu['off'] - 1:+.1%}"
        )


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of one process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _created(status: int) -> bool:
    return status == 201
