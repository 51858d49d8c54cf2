"""Run every benchmark (or those named: ``python -m benchmarks payments gateway``)."""

import importlib
import sys

from benchmarks.load import conditions

# Each module has run_bench(); listed in the order the platform is built up.
MODULES = [
    "payments",
    "statements",
    "instructions",
    "client",
    "gateway",
    "ingress",
    "pipeline",
    "flow",
    "tracing",
    "sustained",
    "idle",
    "lifecycle",
    "operator",
]


def main(names: list[str]) -> int:
    print(f"payplane benchmarks — {conditions()}")
    for name in names or MODULES:
        try:
            module = importlib.import_module(f"benchmarks.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"benchmarks.{name}":
                raise
            continue
        print(f"\n== {name} ==")
        module.run_bench()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
