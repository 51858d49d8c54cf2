# payplane: the whole platform on one machine.
#   make up     install what is missing, start PostgreSQL/Redis/RabbitMQ if needed, run the platform
#   make down   stop what make up started
#   make test   run the test suite (it starts its own copy of the platform on other ports)
#   make bench  print performance figures
.PHONY: up down status test bench bootstrap lint

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

lint: bootstrap
	@.venv/bin/ruff check .
