"""``payplane merchant create`` and ``payplane credentials``: merchants of the running stack.

Both call the merchants service's internal API, signed like any internal caller with the
stack's own secret. Full secrets exist only in the creation (or rotation) response, so the CLI
keeps that response in ``<secrets_dir>/credentials/<name>.json`` (mode 0600, folder 0700) and
``payplane credentials NAME`` reads it back; the database only holds hashes and ciphertexts.
The operator (``payplane apply -f``) will call the same functions.
"""

import argparse
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from payplane_core.clients import MerchantsClient
from payplane_core.text import split_csv

from payplane_cli.clients import ServiceError, call
from payplane_cli.stack import Stack

# Exactly the keys of the Merchant's credentials Secret (the contract).
SECRET_KEYS = (
    "merchant_id",
    "api_key",
    "api_key_id",
    "read_key",
    "signing_secret",
    "webhook_secret",
)


class MerchantError(RuntimeError):
    """A refusal from the merchants service (or no service): main prints it and exits 1."""


def _merchants(stack: Stack, action: Callable[[MerchantsClient], Awaitable[Any]]) -> Any:
    try:
        return call(stack, MerchantsClient, action)
    except ServiceError as exc:
        raise MerchantError(str(exc)) from None


def credentials_path(stack: Stack, name: str) -> Path:
    return stack.secrets_dir / "credentials" / f"{name}.json"


def save_credentials(stack: Stack, name: str, credentials: dict[str, Any]) -> Path:
    """Owner-only, written atomically (never a half-written or world-readable file)."""
    path = credentials_path(stack, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(credentials, fh)
    os.replace(tmp, path)
    return path


def secret_view(credentials: dict[str, Any]) -> dict[str, str]:
    return {key: credentials[key] for key in SECRET_KEYS}


def create_merchant(
    stack: Stack,
    *,
    name: str,
    display_name: str | None = None,
    plan: str | None = None,
    webhook_url: str | None = None,
    requests_per_second: float | None = None,
    burst: int | None = None,
    payments_per_month: int | None = None,
    allowed_providers: list[str] | None = None,
) -> dict[str, Any]:
    """Create the merchant; returns the full response (merchant + credentials), saved locally."""
    body: dict[str, Any] = {"name": name}
    if display_name:
        body["display_name"] = display_name
    if plan:
        body["plan"] = plan
    if webhook_url:
        body["webhook_url"] = webhook_url
    if requests_per_second is not None or burst is not None:
        body["rate_limit"] = {
            k: v
            for k, v in (("requests_per_second", requests_per_second), ("burst", burst))
            if v is not None
        }
    if payments_per_month is not None:
        body["quota"] = {"payments_per_month": payments_per_month}
    if allowed_providers is not None:
        body["allowed_providers"] = allowed_providers
    try:
        created = call(stack, MerchantsClient, lambda merchants: merchants.create(body))
    except ServiceError as exc:
        if exc.status == 409:
            raise MerchantError(
                f"merchant {name} already exists; `payplane credentials {name}` shows them"
            ) from None
        raise MerchantError(str(exc)) from None
    save_credentials(stack, name, created["credentials"])
    return created


def merchant_by_name(stack: Stack, name: str) -> dict[str, Any]:
    try:
        return call(stack, MerchantsClient, lambda merchants: merchants.by_name(name))
    except ServiceError as exc:
        if exc.status == 404:
            raise MerchantError(f"no merchant named {name}") from None
        raise MerchantError(str(exc)) from None


def rotate_credentials(
    stack: Stack, name: str, *, grace_seconds: int | None = None
) -> dict[str, Any]:
    merchant = merchant_by_name(stack, name)
    credentials = _merchants(
        stack, lambda merchants: merchants.rotate(merchant["id"], grace_seconds=grace_seconds)
    )
    save_credentials(stack, name, credentials)
    return credentials


def credentials(stack: Stack, name: str) -> dict[str, Any]:
    """The local copy, checked against the service (a reset stack makes it stale)."""
    merchant = merchant_by_name(stack, name)
    path = credentials_path(stack, name)
    if not path.exists():
        raise MerchantError(
            f"no local credentials for {name} (full secrets are shown only once); "
            f"`payplane credentials {name} --rotate` issues new ones"
        )
    saved = json.loads(path.read_text())
    if saved.get("merchant_id") != merchant["id"]:
        raise MerchantError(f"{path} belongs to an older merchant {name}; use --rotate")
    return saved


# -- command line ---------------------------------------------------------------------------


def register(
    sub: argparse._SubParsersAction, stack_of: Callable[[argparse.Namespace], Stack]
) -> None:
    merchant = sub.add_parser("merchant", help="manage merchants of the running platform")
    actions = merchant.add_subparsers(dest="merchant_command", required=True)
    create = actions.add_parser("create", help="create a merchant; prints its credentials (JSON)")
    create.add_argument("name", help="unique name (a Kubernetes resource name: a-z, 0-9, -)")
    create.add_argument("--display-name")
    create.add_argument("--plan")
    create.add_argument("--webhook-url")
    create.add_argument("--rps", type=float, help="rate limit: requests per second")
    create.add_argument("--burst", type=int, help="rate limit: burst size")
    create.add_argument("--quota", type=int, help="payments per month")
    create.add_argument("--allowed-providers", type=split_csv, help="comma-separated names")

    def cmd_create(args: argparse.Namespace) -> int:
        created = create_merchant(
            stack_of(args),
            name=args.name,
            display_name=args.display_name,
            plan=args.plan,
            webhook_url=args.webhook_url,
            requests_per_second=args.rps,
            burst=args.burst,
            payments_per_month=args.quota,
            allowed_providers=args.allowed_providers,
        )
        print(json.dumps(secret_view(created["credentials"]), indent=2))
        return 0

    create.set_defaults(func=cmd_create)

    creds = sub.add_parser("credentials", help="print a merchant's credentials (JSON)")
    creds.add_argument("name")
    creds.add_argument(
        "--rotate", action="store_true", help="issue new keys (old ones get a grace)"
    )
    creds.add_argument("--grace-seconds", type=int, help="with --rotate: how long old keys work")

    def cmd_credentials(args: argparse.Namespace) -> int:
        stack = stack_of(args)
        found = (
            rotate_credentials(stack, args.name, grace_seconds=args.grace_seconds)
            if args.rotate
            else credentials(stack, args.name)
        )
        print(json.dumps(secret_view(found), indent=2))
        return 0

    creds.set_defaults(func=cmd_credentials)
