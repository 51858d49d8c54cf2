"""The local stack's Envoy: its configuration, written before Envoy starts."""

import os
import shlex
from pathlib import Path

from payplane_core import platform
from payplane_ingress.files import envoy_binary, write_all
from payplane_ingress.model import (
    Ingress,
    Tls,
    Upstream,
    contract_routes,
    otlp_traces_url,
    trace_sampling_percent,
)
from payplane_ingress.tls import ensure_self_signed

from payplane_cli.providers import SIMULATORS

# Base ports (the stack adds its offset), from the platform manifest.
LISTEN_PORT = platform.port(platform.INGRESS)
ADMIN_PORT = platform.INGRESS_ADMIN_PORT
PUBLIC_UPSTREAMS = {name: platform.port(name) for name in platform.public_upstreams()}
GATEWAY_PORT = platform.port(platform.AUTHORIZER)


def config_dir(stack) -> Path:
    return stack.state_dir / "envoy"


def ingress_for(stack) -> Ingress:
    env = stack.common_env()
    tls = None
    if os.environ.get("PAYPLANE_INGRESS_TLS") == "1":
        cert, key = ensure_self_signed(stack.state_dir / "tls")
        tls = Tls(certificate=str(cert), private_key=str(key))
    return Ingress(
        listen_port=stack.port(LISTEN_PORT),
        admin_port=stack.port(ADMIN_PORT),
        gateway=Upstream("gateway", "127.0.0.1", stack.port(GATEWAY_PORT), timeout_ms=2_000),
        upstreams=tuple(
            Upstream(name, "127.0.0.1", stack.port(port)) for name, port in PUBLIC_UPSTREAMS.items()
        ),
        # The local simulators each get their own callback bucket (the default limit).
        routes=contract_routes({name: None for name in SIMULATORS}),
        tls=tls,
        ip_rps=stack.ingress_ip_rps,
        ip_burst=stack.ingress_ip_burst,
        otlp_traces_url=otlp_traces_url(env),
        # The services' own sampler variables, so Envoy records the share they are set to.
        trace_sampling_percent=trace_sampling_percent(env),
    )


def prepare(stack) -> None:
    write_all(ingress_for(stack), config_dir(stack))


def argv(stack) -> list[str]:
    """Envoy exits (SIGTERM) when the process that started it exits, so a shell that stays
    waiting is its parent; ``down`` signals the whole process group, shell and Envoy alike."""
    envoy = [
        envoy_binary(),
        "-c",
        str(config_dir(stack) / "envoy.json"),
        "--use-dynamic-base-id",  # several Envoys (local, test, bench) on one machine
        "--log-level",
        "warn",
        "--file-flush-interval-msec",
        "500",
        "--drain-time-s",
        "1",
        "--parent-shutdown-time-s",
        "2",
    ]
    return ["/bin/sh", "-c", f"{shlex.join(envoy)}; exit $?"]
