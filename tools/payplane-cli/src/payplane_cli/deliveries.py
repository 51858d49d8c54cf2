"""``payplane deliveries list|show|redeliver``: merchant webhook deliveries of the running stack.

They call the notifier's internal API (signed with the stack's own secret, caller ``cli``).
A redelivery is one attempt made now, with the same ``webhook-id`` as every earlier attempt.
"""

import argparse
import json
from collections.abc import Callable
from typing import Any

from payplane_core.clients import NotifierClient

from payplane_cli.clients import ServiceError, call
from payplane_cli.stack import Stack


class DeliveryError(RuntimeError):
    """A refusal from the notifier (or no notifier): main prints it and exits 1."""


def _call(stack: Stack, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    # A redelivery waits for the merchant's answer (bounded by the webhook timeout).
    try:
        return call(
            stack,
            NotifierClient,
            lambda notifier: notifier.json(method, path, **kwargs),
            timeout=30,
        )
    except ServiceError as exc:
        raise DeliveryError(str(exc).replace("service at", "at")) from None


def list_deliveries(
    stack: Stack, *, state: str | None = None, merchant_id: str | None = None, limit: int = 20
) -> dict[str, Any]:
    params = {"limit": limit} | {
        k: v for k, v in (("state", state), ("merchant_id", merchant_id)) if v
    }
    return _call(stack, "GET", "/internal/v1/deliveries", params=params)


def show_delivery(stack: Stack, ident: str) -> dict[str, Any]:
    return _call(stack, "GET", f"/internal/v1/deliveries/{ident}")


def redeliver(stack: Stack, ident: str) -> dict[str, Any]:
    """``ident``: the delivery id (``dlv_…``) or the event id (``evt_…``, the webhook-id)."""
    return _call(stack, "POST", f"/internal/v1/deliveries/{ident}/redeliver")


def register(
    sub: argparse._SubParsersAction, stack_of: Callable[[argparse.Namespace], Stack]
) -> None:
    deliveries = sub.add_parser("deliveries", help="merchant webhook deliveries (notifier)")
    actions = deliveries.add_subparsers(dest="deliveries_command", required=True)

    listing = actions.add_parser("list", help="newest first (JSON)")
    listing.add_argument("--state", choices=["pending", "delivered", "failed"])
    listing.add_argument("--merchant", dest="merchant_id", help="a merchant id (mer_…)")
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(
        func=lambda a: _print(
            list_deliveries(stack_of(a), state=a.state, merchant_id=a.merchant_id, limit=a.limit)
        )
    )

    show = actions.add_parser("show", help="one delivery with every attempt (JSON)")
    show.add_argument("id", help="delivery id (dlv_…) or event id / webhook-id (evt_…)")
    show.set_defaults(func=lambda a: _print(show_delivery(stack_of(a), a.id)))

    again = actions.add_parser("redeliver", help="send a failed delivery again, now")
    again.add_argument("id", help="delivery id (dlv_…) or event id / webhook-id (evt_…)")
    again.set_defaults(func=lambda a: _print(redeliver(stack_of(a), a.id)))


def _print(document: dict[str, Any]) -> int:
    print(json.dumps(document, indent=2))
    return 0
