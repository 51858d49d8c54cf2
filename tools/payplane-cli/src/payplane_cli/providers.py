"""``payplane provider register|list`` and the local simulators' credentials.

Registration calls the providers service's internal API (signed with the stack's secret, caller
``cli``), the same PUT the operator issues for a ``Provider`` resource: idempotent, so
``payplane up`` registers the two simulators on every start.

Each simulator of a stack gets its own random API key and Standard Webhooks secret, made once
and kept in ``<secrets_dir>/simulators.json`` (mode 0600), never in the repository.
"""

import argparse
import base64
import json
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from payplane_core import platform
from payplane_core.clients import ProvidersClient
from payplane_core.text import split_csv

from payplane_cli.clients import ServiceError, call

# The local simulated providers: name → (port, priority). sim-a is preferred, sim-b takes over.
SIMULATORS = {"sim-a": (platform.port("sim-a"), 1), "sim-b": (platform.port("sim-b"), 2)}
WEBHOOK_PATH = platform.PROVIDER_WEBHOOK_PATH


class ProviderError(RuntimeError):
    """A refusal from the providers service (or no service): main prints it and exits 1."""


def simulator_credentials(stack, name: str) -> dict[str, str]:
    path = stack.secrets_dir / "simulators.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    if name not in known:
        known[name] = {
            "api_key": "sk_sim_" + secrets.token_urlsafe(24),
            "webhook_secret": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
        }
        stack.secrets_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(known, fh)
    return known[name]


def simulator_env(name: str) -> Callable[[Any], dict[str, str]]:
    """Environment of one simulator process: its secrets and where its callbacks go (Envoy)."""

    def env(stack) -> dict[str, str]:
        creds = simulator_credentials(stack, name)
        return {
            "SIM_API_KEY": creds["api_key"],
            "SIM_WEBHOOK_SECRET": creds["webhook_secret"],
            "SIM_WEBHOOK_URL": f"{stack.url('envoy')}{WEBHOOK_PATH}",
        }

    return env


def _providers(stack, action: Callable[[ProvidersClient], Awaitable[Any]]) -> Any:
    try:
        return call(stack, ProvidersClient, action)
    except ServiceError as exc:
        raise ProviderError(str(exc)) from None


def register_provider(stack, *, name: str, **spec: Any) -> dict:
    """Create or update a provider (``spec``: endpoint, api_key, webhook_secret, priority,
    weight, currencies, timeout_ms, failure_threshold, open_seconds, display_name)."""
    body = {k: v for k, v in spec.items() if v is not None}
    return _providers(stack, lambda providers: providers.put(name, body))


def list_providers(stack) -> list[dict]:
    return _providers(stack, lambda providers: providers.list())


def register_simulators(stack) -> None:
    """Run by ``payplane up`` once the providers service is healthy (idempotent)."""
    for name, (port, priority) in SIMULATORS.items():
        creds = simulator_credentials(stack, name)
        register_provider(
            stack,
            name=name,
            display_name=f"Simulator {name}",
            endpoint=f"http://127.0.0.1:{stack.port(port)}",
            api_key=creds["api_key"],
            webhook_secret=creds["webhook_secret"],
            priority=priority,
            weight=1,
            timeout_ms=2000,
            failure_threshold=5,
            open_seconds=30,
        )


def secret_input(path: str | None, env: str) -> str:
    """A secret from a file, stdin ('-') or the environment; never from argv."""
    if path == "-":
        value = sys.stdin.readline()
    elif path:
        value = Path(path).read_text()
    else:
        value = os.environ.get(env, "")
    if not value.strip():
        raise ProviderError(f"no secret given: pass a file (or '-' for stdin) or set {env}")
    return value.strip()


def register(
    sub: argparse._SubParsersAction, stack_of: Callable[[argparse.Namespace], Any]
) -> None:
    provider = sub.add_parser("provider", help="manage payment providers of the running platform")
    actions = provider.add_subparsers(dest="provider_command", required=True)
    add = actions.add_parser(
        "register", help="create or update a provider (idempotent)", allow_abbrev=False
    )
    add.add_argument("name", help="a Kubernetes resource name (a-z, 0-9, -)")
    add.add_argument("--endpoint", required=True, help="base URL of the provider's API")
    # Secrets never on the command line (shell history, ps): a file, '-' for stdin, or the env.
    add.add_argument(
        "--api-key-file", help="file holding the API key ('-': stdin; else $PROVIDER_API_KEY)"
    )
    add.add_argument(
        "--webhook-secret-file",
        help="file holding the whsec_… secret ('-': stdin; else $PROVIDER_WEBHOOK_SECRET)",
    )
    add.add_argument("--display-name")
    add.add_argument("--priority", type=int, help="lower is preferred")
    add.add_argument("--weight", type=int, help="share among equal priorities")
    add.add_argument(
        "--currencies", type=split_csv, help="comma-separated ISO 4217 codes; none = all"
    )
    add.add_argument("--timeout-ms", type=int)
    add.add_argument("--failure-threshold", type=int, help="failures that open its circuit")
    add.add_argument("--open-seconds", type=int, help="how long its circuit stays open")

    def cmd_register(args: argparse.Namespace) -> int:
        out = register_provider(
            stack_of(args),
            name=args.name,
            endpoint=args.endpoint,
            api_key=secret_input(args.api_key_file, "PROVIDER_API_KEY"),
            webhook_secret=secret_input(args.webhook_secret_file, "PROVIDER_WEBHOOK_SECRET"),
            display_name=args.display_name,
            priority=args.priority,
            weight=args.weight,
            currencies=args.currencies,
            timeout_ms=args.timeout_ms,
            failure_threshold=args.failure_threshold,
            open_seconds=args.open_seconds,
        )
        print(json.dumps(out, indent=2))
        return 0

    add.set_defaults(func=cmd_register)

    def cmd_list(args: argparse.Namespace) -> int:
        print(json.dumps(list_providers(stack_of(args)), indent=2))
        return 0

    actions.add_parser("list", help="registered providers with circuit state").set_defaults(
        func=cmd_list
    )
