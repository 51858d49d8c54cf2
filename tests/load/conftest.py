"""A platform on the configuration of ``make up`` (the real per-IP edge limit of 50/s, burst
100, per client address), on the test stack's ports; only the reconciler's deadlines are short
so tests/load/test_reconciliation.py can watch it work."""

import dataclasses

import pytest
from payplane_cli import local
from payplane_cli.stack import Stack

from tests.support.merchant_receiver import VerifyingReceiver
from tests.support.platform import start

# Processing payments are synced soon; pending ones wait longer, because under load a payment
# may legitimately queue for its routing a while, and routing it twice is wasted work.
RECONCILE_AFTER_SECONDS = 8
REROUTE_AFTER_SECONDS = 20
GIVE_UP_AFTER_SECONDS = 5


@pytest.fixture(scope="package")
def stack() -> Stack:
    make_up = Stack()
    stack = dataclasses.replace(
        Stack.for_tests(),
        ingress_ip_rps=make_up.ingress_ip_rps,
        ingress_ip_burst=make_up.ingress_ip_burst,
        extra_env={
            "RECONCILE_PENDING_AFTER_SECONDS": str(REROUTE_AFTER_SECONDS),
            "RECONCILE_PROCESSING_AFTER_SECONDS": str(RECONCILE_AFTER_SECONDS),
            "RECONCILE_INTERVAL_SECONDS": "0.5",
            "RECONCILE_BACKOFF_BASE_SECONDS": "2",
            "RECONCILE_GIVE_UP_SECONDS": str(GIVE_UP_AFTER_SECONDS),
        },
    )
    start(stack)
    yield stack
    local.down(stack)


@pytest.fixture(scope="package")
def receiver():
    receiver = VerifyingReceiver()
    yield receiver
    receiver.close()
