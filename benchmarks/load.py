"""A small closed-loop load generator: N prepared requests over C concurrent connections.

Requests are built (and signed) before the clock starts, so only the server path is timed.
"""

import asyncio
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp


@dataclass(frozen=True)
class Prepared:
    method: str
    url: str
    headers: dict[str, str]
    content: bytes = b""


@dataclass(frozen=True)
class Result:
    label: str
    requests: int
    concurrency: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    def line(self) -> str:
        codes = ",".join(f"{k}:{v}" for k, v in sorted(self.statuses.items()))
        return (
            f"{self.label:<42} {self.rps:>8.0f} req/s  p50 {self.pct(0.50):>7.2f} ms  "
            f"p99 {self.pct(0.99):>7.2f} ms  (n={self.requests}, c={self.concurrency}, {codes})"
        )


async def run(
    label: str, requests: Sequence[Prepared], concurrency: int, expect: Callable[[int], bool]
) -> Result:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(requests)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    # aiohttp rather than httpx: httpx tops out near 400 req/s here and would measure itself.
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:

        async def worker() -> None:
            for item in queue:
                started = time.perf_counter()
                async with client.request(
                    item.method, item.url, headers=item.headers, data=item.content or None
                ) as response:
                    await response.read()
                latencies.append(time.perf_counter() - started)
                statuses[response.status] = statuses.get(response.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    result = Result(label, len(requests), concurrency, elapsed, latencies, statuses)
    bad = {code: n for code, n in statuses.items() if not expect(code)}
    if bad:
        raise RuntimeError(f"{label}: unexpected statuses {bad}")
    return result


def conditions() -> str:
    cpu = "unknown cpu"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"load avg {load[0]:.2f}; client and servers share this machine; one uvicorn worker "
        f"per service; PostgreSQL {os.environ.get('PGVERSION', '15')} local"
    )
