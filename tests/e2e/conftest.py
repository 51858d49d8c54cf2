"""End-to-end fixtures: one platform for the whole session, through the real Envoy."""

import pytest
from payplane_cli import local
from payplane_cli.stack import Stack

from tests.support.platform import Client, new_merchant, start


# Package scope: the platform stops when tests/e2e is done, so its workers never compete with
# the worker tests that come after it.
@pytest.fixture(scope="package")
def stack() -> Stack:
    stack = Stack.for_tests()
    start(stack)
    yield stack
    local.down(stack)


@pytest.fixture(scope="package")
def ingress_url(stack) -> str:
    return stack.url("envoy")


@pytest.fixture(scope="package")
def merchant(stack):
    return new_merchant(stack)


@pytest.fixture(scope="package")
def client(ingress_url, merchant) -> Client:
    return Client(ingress_url, merchant)
