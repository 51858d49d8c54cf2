"""The whole platform as local processes for end-to-end tests (the test stack: ports +1000)."""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import requests
from payplane_cli import local
from payplane_cli.merchants import create_merchant, secret_view
from payplane_cli.stack import Stack
from requests_http_signature import HTTPSignatureAuth, algorithms


def start(stack: Stack) -> None:
    """A clean platform: no process of an earlier run, fresh databases, Redis db and vhost."""
    local.fresh_up(stack)


@contextmanager
def running_test_stack() -> Iterator[Stack]:
    """The test stack, clean, for one package's tests; stopped after them so its workers never
    compete with the tests that come next."""
    stack = Stack.for_tests()
    start(stack)
    try:
        yield stack
    finally:
        local.down(stack)


@dataclass
class Merchant:
    name: str
    merchant_id: str
    api_key: str
    api_key_id: str
    read_key: str
    signing_secret: str
    webhook_secret: str


def new_merchant(stack: Stack, **options) -> Merchant:
    name = options.pop("name", f"m-{time.time_ns()}")
    created = create_merchant(stack, name=name, **options)
    return Merchant(name=name, **secret_view(created["credentials"]))


def busy_merchant(stack: Stack, receiver, requests_per_second: int) -> Merchant:
    """A merchant for load: limits far above the test's rate, webhooks to ``receiver`` (a
    ``VerifyingReceiver``, given the merchant's webhook secret)."""
    merchant = new_merchant(
        stack,
        webhook_url=receiver.url,
        requests_per_second=requests_per_second,
        burst=requests_per_second,
        payments_per_month=1_000_000,
    )
    receiver.secret = merchant.webhook_secret
    return merchant


class Client:
    """A merchant's HTTP client: requests + requests-http-signature (an independent RFC 9421
    implementation), exactly as the README shows merchants."""

    def __init__(self, base: str, merchant: Merchant, source_address: str | None = None) -> None:
        self.base = base
        self.merchant = merchant
        self.session = requests.Session()
        if source_address:
            from requests.adapters import HTTPAdapter

            class Bound(HTTPAdapter):
                def init_poolmanager(self, *args, **kwargs):
                    kwargs["source_address"] = (source_address, 0)
                    super().init_poolmanager(*args, **kwargs)

            self.session.mount("http://", Bound())

    def signer(self, **overrides) -> HTTPSignatureAuth:
        options = dict(
            signature_algorithm=algorithms.HMAC_SHA256,
            key=self.merchant.signing_secret.encode(),
            key_id=self.merchant.api_key_id,
            covered_component_ids=("@method", "@path", "content-digest"),
            use_nonce=True,
        )
        return HTTPSignatureAuth(**(options | overrides))

    def post(
        self, path: str, body, *, bearer: str | None = None, headers=None, sign=True, **signer
    ):
        """``signer`` overrides the RFC 9421 signer's options (e.g. ``key=`` to forge)."""
        headers = {"Authorization": f"Bearer {bearer or self.merchant.api_key}"} | (headers or {})
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
        request = requests.Request("POST", self.base + path, headers=headers, data=data).prepare()
        if sign:
            self.signer(**signer)(request)
        return self.session.send(request, timeout=10)

    def get(self, path: str, *, bearer: str | None = None, headers=None, **kwargs):
        headers = {"Authorization": f"Bearer {bearer or self.merchant.read_key}"} | (headers or {})
        return self.session.get(self.base + path, headers=headers, timeout=10, **kwargs)

    def send(self, request: requests.PreparedRequest):
        return self.session.send(request, timeout=10)
