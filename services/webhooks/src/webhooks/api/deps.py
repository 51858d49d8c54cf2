"""Request dependencies: settings, sessions, the payments client and the provider secrets."""

from typing import Annotated

import httpx
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import async_sessionmaker

from webhooks.core.config import Settings
from webhooks.provider_secrets import ProviderSecrets


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_sessions(request: Request) -> async_sessionmaker:
    return request.app.state.sessions


async def get_payments(request: Request) -> httpx.AsyncClient:
    return request.app.state.payments


async def get_provider_secrets(request: Request) -> ProviderSecrets:
    return request.app.state.provider_secrets


SettingsDep = Annotated[Settings, Depends(get_settings)]
Sessions = Annotated[async_sessionmaker, Depends(get_sessions)]
Payments = Annotated[httpx.AsyncClient, Depends(get_payments)]  # internally signed
SecretsDep = Annotated[ProviderSecrets, Depends(get_provider_secrets)]
