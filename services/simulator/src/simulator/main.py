"""Simulator entry point: ``uvicorn --factory simulator.main:create_app`` (one named provider)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from payplane_core import http
from payplane_core.app import create_service_app
from payplane_core.problems import PROBLEM_RESPONSES
from payplane_core.tasks import stop

from simulator.api.routes import charges, control
from simulator.core.config import Settings
from simulator.ledger import Ledger


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.http = http.client()
        yield
        await stop(*app.state.tasks)
        await app.state.http.aclose()

    # A third party: its routes take the provider's API key, not the platform's internal
    # signature, so they are added after the factory (which would require that signature).
    app = create_service_app(settings=settings, routers=[], lifespan=lifespan)
    app.state.ledger = Ledger(provider=settings.provider_name)
    app.state.tasks = set()
    # Every refusal and every injected fault is a problem document: documented as such.
    app.include_router(charges.router, responses=PROBLEM_RESPONSES)
    app.include_router(control.router, responses=PROBLEM_RESPONSES)
    return app
