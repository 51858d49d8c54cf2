"""The image contract without a Docker engine: each service installed the way services/Dockerfile
installs it (only its own package, no dev group, not editable) into its own environment, then
started with nothing but the environment its chart gives it, against the machine's PostgreSQL,
Redis and RabbitMQ. /health and /ready must answer 200: an image that imports something only the
shared development environment has, or a chart that forgets a setting, fails here.

What differs from a pod, and only that: Secret references get values (random secrets; the CNPG,
Redis and RabbitMQ connection strings of this machine), Service host names resolve to
127.0.0.1, the broker vhost is the test vhost, and the port is a free one (so a running `make up`
is never disturbed). Environments are cached in .local/image-envs (workspace packages rebuilt
every run, so the code is current)."""

import asyncio
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml
from payplane_core import platform
from payplane_core.db import drop_database, ensure_database

from tests.charts.conftest import CHARTS, COMPONENT_TOGGLES, REPO, rendered_secrets

UV = REPO / ".local" / "tools" / "bin" / "uv"
ENVS = REPO / ".local" / "image-envs"
PG = "postgresql://payplane:payplane@127.0.0.1:5432"
REDIS_URL = os.environ.get("PAYPLANE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
AMQP_VHOST = "payplane_test"
REFERENCE = re.compile(r"\$\((\w+)\)")
READY_TIMEOUT = 60.0

# component → (workspace package, APP build argument), exactly as skaffold.yaml builds them.
SKAFFOLD = yaml.safe_load((REPO / "skaffold.yaml").read_text())
BUILD_ARGS = {a["image"]: a["docker"]["buildArgs"] for a in SKAFFOLD["build"]["artifacts"]}


def _component_image(component: str) -> str:
    templates = SKAFFOLD["deploy"]["helm"]["releases"][0]["setValueTemplates"]
    variable = templates[f"{component}.image.repository"]
    return next(image for image in BUILD_ARGS if re.sub(r"\W", "_", image) in variable)


COMPONENTS = [c for c in COMPONENT_TOGGLES if c not in ("sim-b", "ingress", "operator")]


def image_env(package: str) -> Path:
    """``uv sync --frozen --no-dev --package P --no-editable``, as the Dockerfile runs it."""
    target = ENVS / package
    members = [package, "payplane-core"]
    command = [str(UV), "sync", "--frozen", "--no-dev", "--package", package, "--no-editable", "-q"]
    command += [arg for member in members for arg in ("--reinstall-package", member)]
    subprocess.run(  # noqa: S603 - our own argv
        command,
        cwd=REPO,
        env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(target)},
        check=True,
        timeout=300,
    )
    return target


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _secret_value(ref: dict, database: str, generated: dict) -> str:
    name, key = ref["name"], ref["key"]
    if (name, key) in generated and key != "url":  # the chart's own Secrets, as rendered
        return generated[(name, key)]
    if name.endswith("-db-app"):
        return {"uri": f"{PG}/{database}", "username": "payplane", "password": "payplane"}.get(
            key, database
        )
    if name.endswith("-default-user"):  # RabbitmqCluster's credentials
        return "guest"
    if key == "url":  # the Redis Secret
        return REDIS_URL
    raise AssertionError(f"the chart references a Secret nobody makes: {name}/{key}")


def pod_environment(container: dict, database: str, port: int, generated: dict) -> dict[str, str]:
    env = {}
    for item in container["env"]:
        if "valueFrom" in item:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = _secret_value(ref, database, generated)
        else:
            env[item["name"]] = REFERENCE.sub(lambda m: env[m.group(1)], item["value"])
    for name, value in env.items():
        for host in platform.COMPONENTS:  # Service names → this machine
            value = value.replace(f"://{host}:", "://127.0.0.1:")
        value = value.replace("@rabbitmq:5672/", f"@127.0.0.1:5672/{AMQP_VHOST}")
        env[name] = re.sub(r"@[\w-]+-db-rw(\.[\w.-]+)?:5432", "@127.0.0.1:5432", value)
    return env | {"HOST": "127.0.0.1", "PORT": str(port)}


def _rendered(renderer) -> list[dict]:
    return renderer.docs(values={"global": {"monitoring": {"enabled": False}}})


def _deployment(renderer, component: str) -> dict:
    docs = _rendered(renderer)
    return next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == component)


def _wait_ready(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/ready", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # polling for an observable fact (200), bounded by READY_TIMEOUT
    pytest.fail(f"not ready after {READY_TIMEOUT:.0f}s:\n{log.read_text()[-3000:]}")


# Whose migrations make the database a component reads (the relay reads the payments outbox).
DATABASE_OWNER = {"relay": "payments"}


def migrate(renderer, owner: str, database: str, tmp_path: Path) -> None:
    """The owner's init container: ``alembic upgrade head`` from its image environment."""
    venv = image_env(BUILD_ARGS[_component_image(owner)]["PACKAGE"])
    container = _deployment(renderer, owner)["spec"]["template"]["spec"]["initContainers"][0]
    generated = rendered_secrets(_rendered(renderer))
    env = pod_environment(container, database, 0, generated) | {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin"
    }
    result = subprocess.run(  # noqa: S603 - the init container's command
        container["command"],
        cwd=REPO / container["workingDir"].removeprefix("/app/"),
        env=env | {"HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("component", COMPONENTS)
def test_image_starts_with_only_its_chart_environment(renderer, component, tmp_path):
    args = BUILD_ARGS[_component_image(component)]
    venv = image_env(args["PACKAGE"])
    pod = _deployment(renderer, component)["spec"]["template"]["spec"]
    owner = component if pod.get("initContainers") else DATABASE_OWNER.get(component)
    database = f"payplane_unit_image_{component.replace('-', '_')}"
    port = _free_port()
    env = pod_environment(
        pod["containers"][0], database, port, rendered_secrets(_rendered(renderer))
    )
    if owner:
        asyncio.run(drop_database(f"{PG}/{database}"))
        asyncio.run(ensure_database(f"{PG}/{database}"))
        migrate(renderer, owner, database, tmp_path)
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - the image's CMD, spelled out
            [
                str(venv / "bin" / "uvicorn"),
                "--factory",
                args["APP"],
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--no-server-header",
            ],
            cwd=tmp_path,
            env=env | {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_ready(url, process, log)
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        assert httpx.get(f"{url}/ready", timeout=5).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=15)
        if owner:
            asyncio.run(drop_database(f"{PG}/{database}"))


def test_the_image_environments_hold_only_their_package():
    """The cached environments are what the Dockerfile makes: no development tools in them."""
    for venv in ENVS.glob("payplane-*"):
        assert not (venv / "bin" / "pytest").exists()
        assert not (venv / "bin" / "ruff").exists()
    assert shutil.which  # the check above is meaningful once the contract tests have run
    assert CHARTS.exists()
