"""CPU per server process group, from /proc utime+stime (the lifecycle bench's accounting):
the platform's processes with their children, and the shared servers (PostgreSQL, RabbitMQ,
Redis) found by command name."""

import os
from dataclasses import dataclass, field
from pathlib import Path

from payplane_cli.stack import PROCESSES, Stack

TICK = os.sysconf("SC_CLK_TCK")
# Shared servers the platform uses, found by command name; their children count with them.
SHARED = {"PostgreSQL": ("postgres",), "RabbitMQ": ("beam.smp",), "Redis": ("redis-server",)}
NOT_COUNTED = ("prometheus",)  # scrapes the stack; no part of any payment


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name, _, rest = text.rpartition(")")
    return [name.partition("(")[2], *rest.split()]  # [comm, state, ppid, pgrp, ...]


def _processes() -> dict[int, list[str]]:
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            table[int(entry)] = stat
    return table


def _ticks(stat: list[str]) -> tuple[int, int]:
    """(own utime+stime, reaped children's cutime+cstime)."""
    return int(stat[12]) + int(stat[13]), int(stat[14]) + int(stat[15])


def process_cpu_ms(pid: int) -> float:
    """CPU time (user + system) one process has used so far, in ms."""
    stat = _stat(pid)
    if stat is None:
        raise ProcessLookupError(pid)
    return _ticks(stat)[0] * 1000 / os.sysconf("SC_CLK_TCK")


@dataclass
class Snapshot:
    """CPU ticks per server group: each member's own, plus what the group's roots reaped."""

    own: dict[str, dict[tuple[int, str], int]] = field(default_factory=dict)
    reaped: dict[str, int] = field(default_factory=dict)


def _groups(stack: Stack, table: dict[int, list[str]]) -> dict[str, list[int]]:
    roots: dict[str, list[int]] = {}
    for name in PROCESSES:
        if name not in NOT_COUNTED and (pid := stack.pid_of(name)) is not None:
            roots[name] = [pid]
    for group, commands in SHARED.items():
        roots[group] = [
            pid
            for pid, stat in table.items()
            if stat[0] in commands and table.get(int(stat[2]), ["", ""])[0] not in commands
        ]
    children: dict[int, list[int]] = {}
    for pid, stat in table.items():
        children.setdefault(int(stat[2]), []).append(pid)
    groups = {}
    for group, pids in roots.items():
        members, todo = [], list(pids)
        while todo:
            pid = todo.pop()
            members.append(pid)
            todo += children.get(pid, [])
        groups[group] = members
    return groups


def snapshot(stack: Stack) -> tuple[Snapshot, dict[str, list[int]]]:
    table = _processes()
    groups = _groups(stack, table)
    snap = Snapshot()
    for group, members in groups.items():
        snap.own[group] = {(pid, table[pid][20]): _ticks(table[pid])[0] for pid in members}
        snap.reaped[group] = sum(_ticks(table[pid])[1] for pid in members)
    return snap, groups


def cpu_ms(before: Snapshot, after: Snapshot) -> dict[str, float]:
    """Per group: CPU used between the snapshots. A member that exited in between was reaped
    into its parent's children time with all its life's ticks: what it had used before is
    taken off again."""
    used = {}
    for group, members in after.own.items():
        earlier = before.own.get(group, {})
        ticks = sum(t - earlier.get(key, 0) for key, t in members.items())
        ticks += after.reaped[group] - before.reaped.get(group, 0)
        ticks -= sum(t for key, t in earlier.items() if key not in members)
        used[group] = max(0, ticks) * 1000 / TICK
    return used


def per_request(before: Snapshot, stack: Stack, requests: int) -> str:
    """The CPU each server group used since ``before``, per request in ms, busiest first."""
    after, _ = snapshot(stack)
    used = sorted(cpu_ms(before, after).items(), key=lambda item: -item[1])
    return ", ".join(f"{name} {ms / requests:.3f}" for name, ms in used if ms > 0)


def machine_ticks() -> tuple[int, int]:
    """(busy, all) CPU ticks of the whole machine since boot, from /proc/stat (every core,
    every process: the bench's own client included)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The machine's busy share between two ``machine_ticks`` readings, 0..1."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return busy / total if total else 0.0
