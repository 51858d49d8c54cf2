"""The shared infrastructure (scripts/bootstrap.sh starts it), stopped and started again for
fault tests. Every step is bounded, and each ``start_*`` returns only once the server answers:
other tests use the same servers."""

import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import redis

PG_PORT = 5432
AMQP_PORT = 5672
# Redis runs without persistence: a restart loses its data. These are the settings a restart
# must keep (whoever started it chose them); the rest are defaults.
REDIS_KEPT = ("port", "bind", "dir", "logfile", "save", "appendonly")


def _run(*argv: str, timeout: float = 60) -> None:
    subprocess.run(  # noqa: S603 - fixed argv
        [shutil.which(argv[0]) or argv[0], *argv[1:]],
        check=True,
        timeout=timeout,
        capture_output=True,
    )


def wait_for(check, *, within: float, what: str) -> float:
    """Poll ``check`` until true; seconds it took. A fact, never a fixed sleep."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise TimeoutError(f"{what} not within {within}s")
        time.sleep(0.05)
    return time.monotonic() - started


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


# -- PostgreSQL (the Debian cluster bootstrap.sh starts) ---------------------------------------
def pg_cluster() -> tuple[str, str]:
    """(version, name) as bootstrap.sh picks it: the newest installed version's main cluster."""
    versions = sorted(Path("/etc/postgresql").iterdir(), key=lambda p: int(p.name.split(".")[0]))
    return versions[-1].name, "main"


def pg_ready() -> bool:
    return (
        subprocess.run(  # noqa: S603 - fixed argv
            [
                shutil.which("pg_isready") or "pg_isready",
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                str(PG_PORT),
            ],
            timeout=5,
            check=False,
        ).returncode
        == 0
    )


def pg(action: str) -> None:
    """``stop`` (fast: open connections are cut) or ``start`` the cluster."""
    _run("pg_ctlcluster", "--skip-systemctl-redirect", *pg_cluster(), action)
    if action == "start":
        wait_for(pg_ready, within=30, what="PostgreSQL accepting connections")


# -- Redis ---------------------------------------------------------------------------------
def redis_settings(url: str) -> dict[str, str]:
    client = redis.Redis.from_url(url)
    try:
        return {name: client.config_get(name)[name] for name in REDIS_KEPT}
    finally:
        client.close()


def redis_stop(url: str) -> None:
    """``SHUTDOWN NOSAVE``: the server exits, its data gone (it never persisted any)."""
    client = redis.Redis.from_url(url)
    try:
        client.shutdown(nosave=True)
    except redis.ConnectionError:
        pass  # the server closed the connection while exiting: that is the answer
    finally:
        client.close()
    port = urlsplit(url).port or 6379
    wait_for(lambda: not listening(port), within=10, what="Redis gone")


def redis_start(settings: dict[str, str]) -> None:
    argv = ["redis-server", "--daemonize", "yes"]
    for name, value in settings.items():
        argv += [f"--{name}", *(value.split() or [""])]
    _run(*argv, timeout=15)
    wait_for(lambda: listening(int(settings["port"])), within=15, what="Redis listening")


# -- RabbitMQ ------------------------------------------------------------------------------
def rabbitmq_app(action: str) -> None:
    """``stop_app`` / ``start_app``: the broker's application, the Erlang node stays."""
    _run("rabbitmqctl", "-q", action)
    if action == "start_app":
        wait_for(lambda: listening(AMQP_PORT), within=30, what="RabbitMQ listening")
