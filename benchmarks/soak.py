"""``make soak``: payments at a steady rate for 10 minutes through Envoy, the simulator and its
callback to the merchant's verified final webhook, while the resident memory and open file
descriptors of every platform process are sampled. Reports each process's growth between the
first sample after warm-up and the last, every answer's status, and how many created payments
never reached their final webhook (must be 0). Not part of ``make test``.

SOAK_SECONDS (default 600) and SOAK_RATE (payments per second, default 10) shorten or change it.
"""

import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from payplane_cli import local
from payplane_cli.stack import PROCESSES, Stack

from benchmarks.flow import Receiver, payment_poster, unlimited_merchant

SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
RATE = float(os.environ.get("SOAK_RATE", "10"))
SAMPLE_SECONDS = max(5, SECONDS // 20)
DRAIN_SECONDS = 120


def descendants(pid: int) -> list[int]:
    """``pid`` and every process under it (Envoy runs under the shell that waits for it)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
                queue.extend(int(child) for child in children)
        except OSError:
            continue
    return found


def footprint(pid: int) -> tuple[float, int] | None:
    """(resident MiB, open fds) of a live process and its descendants, None once it is gone."""
    kib = fds = 0
    for member in descendants(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
            fds += len(os.listdir(f"/proc/{member}/fd"))
        except OSError:
            if member == pid:
                return None
            continue
        kib += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")), 0
        )
    return kib / 1024, fds


def sample(stack: Stack) -> dict[str, tuple[float, int]]:
    taken = {}
    for name in PROCESSES:
        pid = stack.pid_of(name)
        if pid and (seen := footprint(pid)):
            taken[name] = seen
    return taken


def report(samples: list[dict[str, tuple[float, int]]]) -> None:
    warm, last = samples[min(1, len(samples) - 1)], samples[-1]
    print(f"  {'process':<10} {'RSS MiB warm→last':>22} {'growth':>8} {'fds warm→last':>15}")
    for name in warm:
        if name not in last:
            print(f"  {name:<10} gone before the end")
            continue
        (rss0, fd0), (rss1, fd1) = warm[name], last[name]
        growth = (rss1 - rss0) / rss0 * 100 if rss0 else 0.0
        print(f"  {name:<10} {rss0:>10.1f} → {rss1:<9.1f} {growth:>+7.1f}% {fd0:>7} → {fd1:<6}")


def run_soak() -> int:
    stack = Stack.for_bench()
    local.fresh_up(stack)
    receiver = Receiver()
    statuses: Counter[int] = Counter()
    created: set[str] = set()
    try:
        post = payment_poster(stack, unlimited_merchant(stack, receiver, "soak"))

        def create(i: int) -> None:
            try:
                response = post({"amount": 1000 + i % 500, "currency": "EUR"})
            except requests.RequestException:
                statuses[0] += 1
                return
            statuses[response.status_code] += 1
            if response.status_code == 201:
                created.add(response.json()["id"])

        samples = [sample(stack)]
        print(f"  {RATE:g} payments/s for {SECONDS}s, sampling every {SAMPLE_SECONDS}s")
        with ThreadPoolExecutor(max_workers=16) as pool:
            t0 = next_sample = time.perf_counter()
            for i in range(int(RATE * SECONDS)):
                time.sleep(max(0.0, t0 + i / RATE - time.perf_counter()))
                pool.submit(create, i)
                if time.perf_counter() >= next_sample + SAMPLE_SECONDS:
                    next_sample = time.perf_counter()
                    samples.append(sample(stack))
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline and not created <= set(receiver.arrived):
            time.sleep(0.5)
        samples.append(sample(stack))
        lost = len(created - set(receiver.arrived))
        print(f"  answers: {dict(sorted(statuses.items()))}")
        print(f"  created {len(created)}, final webhook received for {len(created) - lost}")
        print(f"  lost (created, never finished): {lost}")
        report(samples)
        return 1 if lost or any(code >= 500 or code == 0 for code in statuses) else 0
    finally:
        receiver.server.shutdown()
        local.down(stack)


if __name__ == "__main__":
    sys.exit(run_soak())
