"""What the platform costs doing nothing: the bench stack started and settled, then CPU per
server group over a quiet window, from /proc (the lifecycle bench's accounting, benchmarks.cpu).

Every payment pays a share of it (idle ms/s divided by the payment rate), and a process that
polls shows up here first: the relay's 100 ms outbox poll was 13.7–16.3 ms/s of it before the
outbox's NOTIFY replaced the poll.
"""

import os
import time

from payplane_cli import local
from payplane_cli.stack import Stack

from benchmarks.cpu import cpu_ms, snapshot

SETTLE_SECONDS = 10.0  # start-up work (imports, first connections, first scrapes) fades
WINDOW_SECONDS = float(os.environ.get("PAYPLANE_BENCH_IDLE_SECONDS", "30"))


def run_bench() -> None:
    stack = Stack.for_bench()
    local.fresh_up(stack)
    try:
        time.sleep(SETTLE_SECONDS)
        before, _ = snapshot(stack)
        started = time.monotonic()
        time.sleep(WINDOW_SECONDS)
        after, _ = snapshot(stack)
        elapsed = time.monotonic() - started
    finally:
        local.down(stack)
    used = cpu_ms(before, after)
    per_second = sum(used.values()) / elapsed
    print(
        f"idle, nothing offered, {elapsed:.0f} s after a {SETTLE_SECONDS:.0f} s settle: whole stack"
        f" {per_second:.1f} ms CPU per s ({per_second / 25:.2f} ms of each payment at 25/s)"
    )
    print("  | process | ms CPU per s |\n  |---|---|")
    for group, ms in sorted(used.items(), key=lambda kv: -kv[1]):
        print(f"  | {group} | {ms / elapsed:.1f} |")
