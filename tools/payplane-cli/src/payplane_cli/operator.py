"""``payplane operator run``: the kopf operator against the cluster in KUBECONFIG, wired to the
local stack's services (for development; in a cluster the operator image runs
``python -m payplane_operator`` with its settings from the environment)."""

import argparse
import os
from collections.abc import Callable

from payplane_cli.stack import Stack, internal_key_name


def operator_env(stack: Stack) -> dict[str, str]:
    return {
        "ENVIRONMENT": "local",
        "MERCHANTS_URL": stack.url("merchants"),
        "PROVIDERS_URL": stack.url("providers"),
        "INTERNAL_SIGNING_KEY": stack.secrets()[internal_key_name("operator")],
    }


def register(
    sub: argparse._SubParsersAction, stack_of: Callable[[argparse.Namespace], Stack]
) -> None:
    operator = sub.add_parser("operator", help="the Kubernetes operator (kopf)")
    actions = operator.add_subparsers(dest="operator_command", required=True)
    run = actions.add_parser("run", help="reconcile the cluster in KUBECONFIG against this stack")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("--namespace", action="append", help="watch only this namespace")
    scope.add_argument("--all-namespaces", action="store_true", help="watch every namespace")

    def cmd_run(args: argparse.Namespace) -> int:
        from payplane_operator.main import run as run_operator  # kopf only when asked for

        os.environ.update(operator_env(stack_of(args)))
        run_operator(namespaces=None if args.all_namespaces else args.namespace)
        return 0

    run.set_defaults(func=cmd_run)
