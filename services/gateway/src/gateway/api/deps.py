"""Request dependencies: the gate (settings, Redis, merchants client, admitter)."""

from typing import Annotated

from fastapi import Depends, Request

from gateway.decision import Gate


async def get_gate(request: Request) -> Gate:
    return request.app.state.gate


GateDep = Annotated[Gate, Depends(get_gate)]
