"""Hardening: one test platform for the package, through the real Envoy."""

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
def hostile(stack, ingress_url) -> Client:
    """A merchant whose own limits never hide what its input does."""
    return Client(ingress_url, new_merchant(stack, requests_per_second=500, burst=500))


@pytest.fixture(scope="package")
def bystander(stack, ingress_url) -> Client:
    """Another merchant, from another address: must not notice the hostile one."""
    return Client(ingress_url, new_merchant(stack), source_address="127.0.0.2")
