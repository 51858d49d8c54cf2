"""The provider's own API-key check (a third party: no platform internal signature here)."""

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from payplane_core.problems import Problem

from simulator.core.config import Settings
from simulator.ledger import Ledger


# async (they await nothing): FastAPI runs a plain def dependency in its thread pool, a
# thread hop per request for a dictionary lookup.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_ledger(request: Request) -> Ledger:
    return request.app.state.ledger


# A security scheme, not a header parameter: OpenAPI ignores an "Authorization" parameter.
_bearer = HTTPBearer(auto_error=False)


async def require_api_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    settings: Settings = request.app.state.settings
    token = credentials.credentials if credentials is not None else ""
    if not token:
        raise Problem(
            401,
            "missing-api-key",
            "Send the provider API key as a Bearer token.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not hmac.compare_digest(token.encode(), settings.SIM_API_KEY.encode()):
        raise Problem(
            401,
            "invalid-api-key",
            "The API key is not valid.",
            headers={"WWW-Authenticate": "Bearer"},
        )


SettingsDep = Annotated[Settings, Depends(get_settings)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]
