"""``payplane secrets reencrypt``: the middle step of an ENCRYPTION_KEYS rotation.

1. prepend the new key to ENCRYPTION_KEYS everywhere (new secrets are sealed with it, old ones
   still open with the old key); 2. run this command: merchants and providers re-seal every
   secret an older key sealed; 3. drop the old key.
"""

import argparse
import json
from collections.abc import Callable
from typing import Any

from payplane_core.clients import MerchantsClient, ProvidersClient

from payplane_cli.clients import call

KEEPERS = (MerchantsClient, ProvidersClient)


def reencrypt(stack) -> dict[str, int]:
    """How many secrets each service re-sealed."""
    return {
        kind.service: call(stack, kind, lambda client: client.reencrypt_secrets())
        for kind in KEEPERS
    }


def register(
    sub: argparse._SubParsersAction, stack_of: Callable[[argparse.Namespace], Any]
) -> None:
    secrets = sub.add_parser("secrets", help="secrets sealed with ENCRYPTION_KEYS")
    actions = secrets.add_subparsers(dest="action", required=True)

    def cmd_reencrypt(args: argparse.Namespace) -> int:
        print(json.dumps(reencrypt(stack_of(args)), indent=2))
        return 0

    actions.add_parser(
        "reencrypt", help="re-seal with the first key what older keys sealed (key rotation)"
    ).set_defaults(func=cmd_reencrypt)
