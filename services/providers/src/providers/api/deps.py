"""Request dependencies of the providers service."""

from typing import Annotated

from fastapi import Depends, Request
from payplane_core.app import Internal
from payplane_core.problems import Problem
from sqlalchemy.ext.asyncio import async_sessionmaker

from providers.flow import FlowDeps


# async (they await nothing): FastAPI runs a plain def dependency in its thread pool, a
# thread hop per request for a dictionary lookup.
async def get_sessions(request: Request) -> async_sessionmaker:
    return request.app.state.sessions


async def get_flow(request: Request) -> FlowDeps:
    return request.app.state.flow


async def platform_caller(identity: Internal) -> str:
    """The registry is for the platform's own services and tools, never a merchant request."""
    if identity.caller == "gateway":
        raise Problem(403, "internal-only", "The provider registry is not reachable from outside.")
    return identity.caller


Sessions = Annotated[async_sessionmaker, Depends(get_sessions)]
Flow = Annotated[FlowDeps, Depends(get_flow)]
Caller = Annotated[str, Depends(platform_caller)]
