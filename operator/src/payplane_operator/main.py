"""Run the operator: ``python -m payplane_operator`` (the image) or ``payplane operator run``."""

import argparse
import asyncio

import kopf
from payplane_core.logging import configure_logging

from payplane_operator.config import Settings


def run(*, namespaces: list[str] | None = None, settings: Settings | None = None) -> None:
    """Cluster-wide unless ``namespaces`` are given; blocks until stopped (SIGTERM/SIGINT)."""
    settings = settings or Settings()
    configure_logging("operator", settings.LOG_LEVEL)
    import payplane_operator.handlers  # noqa: F401 - registers the handlers

    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces or (),
            liveness_endpoint=f"http://{settings.HOST}:{settings.HEALTH_PORT}/healthz",
        )
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="payplane-operator", description=__doc__)
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--namespace", action="append", help="watch only this namespace")
    scope.add_argument("--all-namespaces", action="store_true", help="watch every namespace")
    args = parser.parse_args(argv)
    run(namespaces=None if args.all_namespaces else args.namespace)


if __name__ == "__main__":
    main()
