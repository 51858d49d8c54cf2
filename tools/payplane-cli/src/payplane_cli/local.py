"""``payplane up`` / ``down`` / ``status``: the whole platform as local processes."""

import asyncio
import shutil
import subprocess

import redis
from payplane_core.db import drop_database, prepare_database

from payplane_cli.stack import PROCESSES, Stack

# How long `up` waits for each process to answer healthy, counted from when it starts waiting
# for that one.
START_TIMEOUT_SECONDS = 90.0


def up(stack: Stack, only: list[str] | None = None) -> list[tuple[str, str]]:
    """Migrate every database, start every process, then wait for each in order (running its
    ``after_start`` once it is healthy); returns (name, address) pairs.

    The processes start together rather than one after another: each spends its first seconds
    importing, and on a small machine those imports overlap instead of adding up. Nothing needs
    another process at start-up (each waits for its dependencies at request time or in its
    readiness), and the migrations all finish before the first process starts, so the relay
    never sees the payments database before its outbox exists.
    """
    chosen = [PROCESSES[name] for name in (only or PROCESSES)]
    for process in chosen:
        if process.database is not None and process.alembic is not None:
            asyncio.run(prepare_database(process.alembic, stack.database_url(process.database)))
    for process in chosen:
        stack.start(process)
    started = []
    for process in chosen:
        # Its import competes with every other start for the two cores, so it gets longer than
        # a lone start would need; a process that exits is reported at once all the same.
        stack.wait_healthy(process, timeout=START_TIMEOUT_SECONDS)
        if process.after_start is not None:
            process.after_start(stack)
        address = stack.url(process.name) if process.port is not None else "(worker)"
        started.append((process.name, address))
    return started


def down(stack: Stack) -> list[str]:
    """Stop in reverse start order; also anything with a pid file no longer in PROCESSES."""
    names = list(PROCESSES)[::-1]
    if stack.run_dir.exists():
        names += [p.stem for p in stack.run_dir.glob("*.pid") if p.stem not in PROCESSES]
    return [name for name in names if stack.stop(name)]


def status(stack: Stack) -> list[tuple[str, int | None]]:
    return [(name, stack.pid_of(name)) for name in PROCESSES]


def fresh_up(stack: Stack, only: list[str] | None = None) -> list[tuple[str, str]]:
    """Start from nothing: for the test and bench stacks, never the local one.

    Stops what runs, drops the chosen processes' databases, empties the stack's Redis db and
    recreates its RabbitMQ vhost (so no message of an earlier run is replayed), then ``up``.
    """
    if stack.name == "local":
        raise RuntimeError("fresh_up wipes data: not for the local stack")
    down(stack)
    for name in only or PROCESSES:
        if (database := PROCESSES[name].database) is not None:
            asyncio.run(drop_database(stack.database_url(database)))
    redis.Redis.from_url(stack.redis_url).flushdb()
    _recreate_vhost(stack.amqp_vhost)
    return up(stack, only)


def _recreate_vhost(vhost: str) -> None:
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None or vhost in ("", "/"):
        return
    for argv in (
        ["delete_vhost", vhost],
        ["add_vhost", vhost],
        ["set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
    ):
        subprocess.run(  # noqa: S603 - fixed argv
            [rabbitmqctl, "-q", *argv],
            capture_output=True,
            timeout=60,
            check=argv[0] != "delete_vhost",
        )
