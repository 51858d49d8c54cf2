"""Entry point of the ``payplane`` command."""

import argparse
import json
import sys

from payplane_cli import apply as apply_commands
from payplane_cli import deliveries as delivery_commands
from payplane_cli import encryption as encryption_commands
from payplane_cli import local, receiver
from payplane_cli import merchants as merchant_commands
from payplane_cli import operator as operator_commands
from payplane_cli import providers as provider_commands
from payplane_cli.stack import Stack


def _stack(args: argparse.Namespace) -> Stack:
    return Stack.for_tests() if args.test_stack else Stack()


EXAMPLE_MERCHANT = "example"


def ensure_example_merchant(stack: Stack) -> str:
    """An example merchant to try the API with, whose credentials this machine holds."""
    try:
        merchant_commands.create_merchant(
            stack,
            name=EXAMPLE_MERCHANT,
            display_name="Example Shop",
            webhook_url="http://127.0.0.1:8090/webhooks",
        )
        return "created"
    except merchant_commands.MerchantError as exc:
        if "already exists" not in str(exc):
            raise
    try:
        merchant_commands.credentials(stack, EXAMPLE_MERCHANT)
        return "exists"
    except merchant_commands.MerchantError:
        # Its one-time secrets are not here (state folder removed): issue new ones.
        merchant_commands.rotate_credentials(stack, EXAMPLE_MERCHANT, grace_seconds=0)
        return "exists, credentials rotated"


def cmd_up(args: argparse.Namespace) -> int:
    stack = _stack(args)
    started = local.up(stack, args.only or None)
    for name, address in started:
        print(f"{name:<12} {address}")
    print(f"logs: {stack.log_dir}")
    if not args.only and not args.no_example:
        try:
            state = ensure_example_merchant(stack)
            print(
                f"\nmerchant '{EXAMPLE_MERCHANT}' {state}; its credentials:"
                f" .venv/bin/payplane credentials {EXAMPLE_MERCHANT}"
            )
        except merchant_commands.MerchantError as exc:  # the platform is up all the same
            print(f"\nno example merchant: {exc}", file=sys.stderr)
        print(f"ingress: {stack.url('envoy')}  (try: curl {stack.url('envoy')}/health)")
        print(f"prometheus: {stack.url('prometheus')}  (rules: charts/payplane/rules)")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stopped = local.down(_stack(args))
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    rows = local.status(_stack(args))
    print(json.dumps({name: pid for name, pid in rows}, indent=2))
    return 0 if all(pid for _, pid in rows) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payplane", description=__doc__)
    parser.add_argument(
        "--test-stack", action="store_true", help="act on the test suite's stack, not the local one"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("up", help="start the platform locally and wait until it is healthy")
    p.add_argument("--only", nargs="*", help="start only these processes")
    p.add_argument("--no-example", action="store_true", help="do not create the example merchant")
    p.set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop what up started").set_defaults(func=cmd_down)
    sub.add_parser("status", help="which processes run").set_defaults(func=cmd_status)
    merchant_commands.register(sub, lambda args: _stack(args))
    provider_commands.register(sub, lambda args: _stack(args))
    receiver.register(sub, lambda args: _stack(args))
    delivery_commands.register(sub, lambda args: _stack(args))
    operator_commands.register(sub, lambda args: _stack(args))
    apply_commands.register(sub, lambda args: _stack(args))
    encryption_commands.register(sub, lambda args: _stack(args))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (RuntimeError, TimeoutError) as exc:  # MerchantError is a RuntimeError
        print(f"payplane: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
