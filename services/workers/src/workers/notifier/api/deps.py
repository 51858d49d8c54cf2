"""Request dependencies: sessions and the running notifier."""

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import async_sessionmaker

from workers.notifier.service import Notifier


async def get_sessions(request: Request) -> async_sessionmaker:
    return request.app.state.sessions


async def get_notifier(request: Request) -> Notifier:
    return request.app.state.notifier


Sessions = Annotated[async_sessionmaker, Depends(get_sessions)]
NotifierDep = Annotated[Notifier, Depends(get_notifier)]
