"""The local platform: which processes make it up, and how to start, check and stop them.

One ``Stack`` is one copy of the platform on this machine: its state folder (pid files, logs,
generated secrets, Envoy config), its port block and its database names. ``make up`` uses the
default stack; the test suite starts its own (``Stack.for_tests()``) so the two never collide.
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from payplane_core.internal_auth import generate_key, public_key
from payplane_core.internal_client import InternalSigner
from payplane_core.platform import COMPONENTS, port

from payplane_cli import ingress, prometheus
from payplane_cli import providers as provider_commands
from payplane_cli.pids import alive, process_start_time, read_pid_file, write_pid_file

REPO = Path(__file__).resolve().parents[4]
PYTHON = sys.executable
# Everything that signs internal requests, each with its own key (payplane_core.internal_auth).
INTERNAL_CALLERS = ("gateway", "payments", "providers", "webhooks", "notifier", "cli", "operator")


@dataclass(frozen=True)
class Process:
    """One local process. ``port`` is an offset-free base port; ``health`` a path or None."""

    name: str
    argv: Callable[["Stack"], list[str]]
    port: int | None = None
    cwd: Path = REPO
    env: Callable[["Stack"], dict[str, str]] = lambda stack: {}
    health: str | None = "/health"
    database: str | None = None  # logical database name; migrated before start
    alembic: Path | None = None
    prepare: Callable[["Stack"], None] | None = None  # e.g. write config files before start
    after_start: Callable[["Stack"], None] | None = None  # e.g. register records once healthy


def uvicorn(factory: str) -> Callable[["Stack"], list[str]]:
    def argv(stack: "Stack") -> list[str]:
        return [PYTHON, "-m", "uvicorn", "--factory", factory, "--no-access-log"] + [
            "--no-server-header"
        ]

    return argv


@dataclass
class Stack:
    name: str = "local"
    state_dir: Path = REPO / ".local" / "stack"
    # Shifts every port of the local stack: PAYPLANE_PORT_OFFSET=100 puts the ingress on 8180.
    port_offset: int = int(os.environ.get("PAYPLANE_PORT_OFFSET", "0"))
    db_prefix: str = "payplane_"
    pg_url: str = os.environ.get(
        "PAYPLANE_PG_URL", "postgresql+asyncpg://payplane:payplane@127.0.0.1:5432"
    )
    redis_url: str = os.environ.get("PAYPLANE_REDIS_URL", "redis://127.0.0.1:6379/0")
    amqp_url: str = os.environ.get("PAYPLANE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    extra_env: dict[str, str] = field(default_factory=dict)
    # Generated secrets and one-time credentials. Machine-wide by default, like the databases
    # they unlock: a second clone of the repo on this machine finds the same keys.
    secrets_dir: Path | None = None
    # Envoy's per-client-IP token bucket.
    ingress_ip_rps: int = 50
    ingress_ip_burst: int = 100
    # The local Prometheus's scrape and rule evaluation interval.
    scrape_interval: str = "15s"

    def __post_init__(self) -> None:
        if self.secrets_dir is None:
            state_home = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
            self.secrets_dir = Path(state_home) / "payplane" / self.name

    @classmethod
    def for_tests(cls) -> "Stack":
        return cls(
            name="test",
            state_dir=REPO / ".local" / "test-stack",
            # The suite's clients all come from 127.0.0.1; the per-IP test uses its own address.
            ingress_ip_rps=500,
            ingress_ip_burst=1000,
            port_offset=1000,
            db_prefix="payplane_test_",
            redis_url=os.environ.get("PAYPLANE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
            # Own vhost (made by scripts/bootstrap.sh) so test workers never see local events.
            amqp_url=os.environ.get(
                "PAYPLANE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/payplane_test"
            ),
        )

    @classmethod
    def for_bench(cls) -> "Stack":
        return cls(
            name="bench",
            state_dir=REPO / ".local" / "bench-stack",
            ingress_ip_rps=100_000,
            ingress_ip_burst=100_000,
            port_offset=2000,
            db_prefix="payplane_bench_",
            redis_url="redis://127.0.0.1:6379/14",
            amqp_url=os.environ.get(
                "PAYPLANE_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/payplane_bench"
            ),
        )

    # -- addresses -------------------------------------------------------------------------
    def port(self, base: int) -> int:
        return base + self.port_offset

    def url(self, process: str) -> str:
        return f"http://127.0.0.1:{self.port(PROCESSES[process].port)}"

    @property
    def amqp_vhost(self) -> str:
        return urlsplit(self.amqp_url).path.removeprefix("/") or "/"

    def database_url(self, database: str) -> str:
        return f"{self.pg_url}/{self.db_prefix}{database}"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "log"

    # -- secrets ---------------------------------------------------------------------------
    def secrets(self) -> dict[str, str]:
        """Random per-stack secrets, made once and kept owner-only; never the local defaults."""
        path = self.secrets_dir / "secrets.json"
        existing = json.loads(path.read_text()) if path.exists() else {}
        wanted = {
            "ENCRYPTION_KEYS": lambda: secrets.token_urlsafe(32),
            **{internal_key_name(caller): generate_key for caller in INTERNAL_CALLERS},
        }
        missing = {k: make() for k, make in wanted.items() if k not in existing}
        if missing:
            self.secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            existing |= missing
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(existing, fh)
        return existing

    def internal_signer(self, audience: str, caller: str = "cli") -> InternalSigner:
        """httpx auth for a tool of this stack (the CLI, the operator, tests) calling a service."""
        key = self.secrets()[internal_key_name(caller)]
        return InternalSigner(key, caller=caller, audience=audience)

    def common_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PAYPLANE_", "UV_"))}
        stack_secrets = self.secrets()
        env |= {
            "ENCRYPTION_KEYS": stack_secrets["ENCRYPTION_KEYS"],
            # Public keys only: every service may know who could call it.
            "INTERNAL_CALLER_KEYS": ",".join(
                f"{caller}:{public_key(stack_secrets[internal_key_name(caller)])}"
                for caller in INTERNAL_CALLERS
            ),
        }
        env |= {
            "ENVIRONMENT": "local",
            # Webhook receivers of local development listen on loopback (payplane_core.egress).
            "WEBHOOK_URL_ALLOWLIST": "127.0.0.1/32,::1/128",
            "REDIS_URL": self.redis_url,
            "AMQP_URL": self.amqp_url,
            "PAYPLANE_STATE_DIR": str(self.state_dir),
            # The scheme merchants sign in @target-uri: https when Envoy terminates TLS.
            "PUBLIC_SCHEME": "https" if os.environ.get("PAYPLANE_INGRESS_TLS") == "1" else "http",
        }
        if os.environ.get("PAYPLANE_OTLP") == "1":
            # Traces to a local OTLP/HTTP collector unless the standard variable says where.
            env.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        for name, process in PROCESSES.items():
            if process.port is not None:
                env[f"{name.upper()}_URL"] = self.url(name)
        return env | self.extra_env

    def process_env(self, process: Process) -> dict[str, str]:
        env = self.common_env() | {"SERVICE_NAME": process.name}
        if process.name in INTERNAL_CALLERS:  # its own private key, never another's
            env["INTERNAL_SIGNING_KEY"] = self.secrets()[internal_key_name(process.name)]
        if process.port is not None:
            env["PORT"] = str(self.port(process.port))
        if process.database is not None:
            env["DATABASE_URL"] = self.database_url(process.database)
        return env | process.env(self)

    # -- lifecycle -------------------------------------------------------------------------
    def pid_of(self, name: str) -> int | None:
        """The live process we started as ``name``, or None. A pid file whose process has gone,
        or whose pid now belongs to another process (reused after a reboot or a crash), is
        stale: forgotten, and that process is never signalled."""
        path = self.run_dir / f"{name}.pid"
        if not path.exists():
            return None
        pid, started = read_pid_file(path)
        if pid is None or started is None or process_start_time(pid) != started:
            path.unlink(missing_ok=True)
            return None
        return pid

    def start(self, process: Process) -> int:
        if (pid := self.pid_of(process.name)) is not None:
            return pid
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if process.prepare is not None:
            process.prepare(self)
        argv = process.argv(self)
        if process.port is not None and argv[:3] == [PYTHON, "-m", "uvicorn"]:
            argv += ["--host", "127.0.0.1", "--port", str(self.port(process.port))]
        log = open(self.log_dir / f"{process.name}.log", "ab")  # noqa: SIM115 - handed to child
        child = subprocess.Popen(  # noqa: S603 - our own argv
            argv,
            cwd=process.cwd,
            env=self.process_env(process),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so down() stops its children too
        )
        log.close()
        write_pid_file(self.run_dir / f"{process.name}.pid", child.pid)
        return child.pid

    def wait_healthy(self, process: Process, timeout: float = 30.0) -> None:
        if process.health is None or process.port is None:
            time.sleep(0.2)
            if self.pid_of(process.name) is None:
                raise RuntimeError(f"{process.name} exited; see {self.log_dir / process.name}.log")
            return
        url = f"{self.url(process.name)}{process.health}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid_of(process.name) is None:
                raise RuntimeError(f"{process.name} exited; see {self.log_dir / process.name}.log")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{process.name} not healthy at {url} after {timeout:.0f}s")

    def stop(self, name: str, timeout: float = 10.0) -> bool:
        """SIGTERM to the process group, SIGKILL after ``timeout``; True if it was running."""
        return self._signal(name, ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)))

    def kill(self, name: str) -> bool:
        """``kill -9`` of the process group, no chance to clean up (a crash, for fault tests)."""
        return self._signal(name, ((signal.SIGKILL, 5.0),))

    def _signal(self, name: str, steps: tuple[tuple[signal.Signals, float], ...]) -> bool:
        pid = self.pid_of(name)
        if pid is None:
            return False
        started = process_start_time(pid)
        for sig, wait in steps:
            if process_start_time(pid) != started:  # gone, and the pid maybe reused: stop here
                break
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and alive(pid):
                time.sleep(0.05)
            if not alive(pid):
                break
        (self.run_dir / f"{name}.pid").unlink(missing_ok=True)
        return True


def internal_key_name(caller: str) -> str:
    return f"INTERNAL_KEY_{caller.upper()}"


SERVICES_DIR = REPO / "services"


def database(name: str) -> str | None:
    return COMPONENTS[name].database


def service(
    name: str, port: int, *, folder: str | None = None, app: str | None = None, **options
) -> Process:
    """A uvicorn service from ``services/<folder>``; with a database, its Alembic migrations."""
    cwd = SERVICES_DIR / (folder or name)
    alembic = cwd / "alembic.ini" if options.get("database") else None
    return Process(
        name=name,
        argv=uvicorn(app or f"{name}.main:create_app"),
        port=port,
        cwd=cwd,
        alembic=alembic,
        **options,
    )


# The platform, in start order.
PROCESSES: dict[str, Process] = {
    p.name: p
    for p in [
        service("payments", port("payments"), database=database("payments")),
        service("merchants", port("merchants"), database=database("merchants")),
        # After merchants: it resolves keys there (MERCHANTS_URL).
        service("gateway", port("gateway")),
        # Two simulated third-party providers, then providers (which registers them once
        # healthy) and webhooks. The simulators call back through Envoy, started last.
        *(
            service(
                name,
                port,
                folder="simulator",
                app="simulator.main:create_app",
                env=provider_commands.simulator_env(name),
            )
            for name, (port, _) in provider_commands.SIMULATORS.items()
        ),
        service(
            "providers",
            port("providers"),
            database=database("providers"),
            after_start=provider_commands.register_simulators,
        ),
        service("webhooks", port("webhooks"), database=database("webhooks")),
        # The async pipeline. The relay reads the payments database's outbox through its own
        # variable, so DATABASE_URL never points a worker at another service's tables.
        service(
            "relay",
            port("relay"),
            folder="workers",
            app="workers.relay.main:create_app",
            env=lambda stack: {"OUTBOX_DATABASE_URL": stack.database_url("payments")},
            health="/ready",
        ),
        # After merchants: it reads webhook URLs and secrets there.
        service(
            "notifier",
            port("notifier"),
            folder="workers",
            app="workers.notifier.main:create_app",
            database=database("notifier"),
            health="/ready",
        ),
    ]
}

# The ingress starts last, once everything it routes to is up.
PROCESSES["envoy"] = Process(
    name="envoy",
    argv=ingress.argv,
    port=ingress.LISTEN_PORT,
    prepare=ingress.prepare,
)
# Then Prometheus, scraping all of the above (Envoy through its admin port).
PROCESSES["prometheus"] = Process(
    name="prometheus",
    argv=prometheus.argv,
    port=prometheus.BASE_PORT,
    prepare=prometheus.prepare,
    health="/-/ready",
)
