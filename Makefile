# payplane: the whole platform on one machine.
#   make up     install what is missing, start PostgreSQL/Redis/RabbitMQ if needed, run the platform
#   make down   stop what make up started
#   make test   run the test suite (it starts its own copy of the platform on other ports)
#   make bench  print performance figures
.PHONY: up down status test bench soak bootstrap lint

PAYPLANE := .venv/bin/payplane
PYTEST_ARGS ?=

bootstrap:
	@scripts/bootstrap.sh

up: bootstrap
	@$(PAYPLANE) up

down:
	@if [ -x $(PAYPLANE) ]; then $(PAYPLANE) down; fi

status:
	@$(PAYPLANE) status

test: bootstrap
	@.venv/bin/python -m pytest $(PYTEST_ARGS)

bench: bootstrap
	@.venv/bin/python -m benchmarks

# 10 minutes at a steady rate: RSS and open fds of every process, nothing lost (not in make test).
soak: bootstrap
	@.venv/bin/python -m benchmarks.soak

# ruff (style and bugs), import-linter (the boundaries in pyproject.toml), vulture (dead code),
# sizes (no file over 400 lines, no function over 60; scripts/check_sizes.py).
lint: bootstrap
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@.venv/bin/lint-imports --no-cache
	@.venv/bin/vulture --min-confidence 80 libs services tools operator benchmarks
	@.venv/bin/python scripts/check_sizes.py
