"""The CLI's one way to call a service of the running stack: payplane_core's typed clients,
signed as caller ``cli`` with the stack's secret, with errors a person can act on."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from payplane_core.clients import InternalClient, Refused, Unavailable, internal_http

if TYPE_CHECKING:  # stack.py imports the command modules that import this one
    from payplane_cli.stack import Stack

C = TypeVar("C", bound=InternalClient)
T = TypeVar("T")


class ServiceError(RuntimeError):
    """A refusal from a service (or no service): main prints it and exits 1."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def client_for(stack: "Stack", kind: type[C], *, timeout: float = 10) -> C:
    signer = stack.internal_signer(kind.service)  # the CLI's own key, for that service
    return kind(internal_http(stack.url(kind.service), signer=signer, timeout=timeout))


def call(
    stack: "Stack", kind: type[C], action: Callable[[C], Awaitable[T]], *, timeout: float = 10
) -> T:
    """Run one async call from synchronous command code."""

    async def run() -> T:
        client = client_for(stack, kind, timeout=timeout)
        try:
            return await action(client)
        finally:
            await client.aclose()

    try:
        return asyncio.run(run())
    except Unavailable:
        raise ServiceError(
            f"the {kind.service} service at {stack.url(kind.service)} is not reachable;"
            " is the platform up (payplane up)?"
        ) from None
    except Refused as exc:
        raise ServiceError(str(exc), exc.status) from None
