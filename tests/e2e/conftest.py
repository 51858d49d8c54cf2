"""End-to-end fixtures: one platform for the whole session, through the real Envoy."""

import pytest

from tests.support.platform import Client, new_merchant, running_test_stack


@pytest.fixture(scope="package")
def stack():
    with running_test_stack() as stack:
        yield stack


@pytest.fixture(scope="package")
def ingress_url(stack) -> str:
    return stack.url("envoy")


@pytest.fixture(scope="package")
def merchant(stack):
    return new_merchant(stack)


@pytest.fixture(scope="package")
def client(ingress_url, merchant) -> Client:
    return Client(ingress_url, merchant)
