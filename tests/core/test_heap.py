"""The app factory freezes what start-up built, after the service's own start-up has run."""

import gc
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from payplane_core.app import create_service_app
from payplane_core.settings import ServiceSettings

from tests.support.internal import internal


class Built:
    """Stands for what a service builds while starting (engines, clients, caches)."""


def _tracked(obj: object) -> bool:
    """Whether the collector would walk ``obj`` (frozen objects are in no generation)."""
    return any(candidate is obj for candidate in gc.get_objects())


@pytest.fixture
def unfreeze():
    gc.unfreeze()  # as in a service process, just started
    yield
    gc.unfreeze()  # the test process goes on collecting as usual


async def test_what_start_up_built_is_frozen_and_its_state_passes_through(unfreeze):
    built: list[Built] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        built.append(Built())
        assert _tracked(built[0])  # not frozen before the service's start-up is done
        yield {"built": built[0]}

    settings = ServiceSettings(SERVICE_NAME="heap", **internal("heap"))
    app = create_service_app(settings=settings, routers=[], lifespan=lifespan)
    async with app.router.lifespan_context(app) as state:
        assert state == {"built": built[0]}
        assert not _tracked(built[0])
        assert gc.get_freeze_count() > 0
        made_later = Built()
        assert _tracked(made_later)  # objects made while serving are collected as before


async def test_a_service_without_a_lifespan_is_frozen_too(unfreeze):
    settings = ServiceSettings(SERVICE_NAME="heap", **internal("heap"))
    app = create_service_app(settings=settings, routers=[])
    before = Built()
    async with app.router.lifespan_context(app) as state:
        assert state is None
        assert not _tracked(before)


async def test_only_the_first_start_up_of_a_process_freezes(unfreeze):
    settings = ServiceSettings(SERVICE_NAME="heap", **internal("heap"))
    first = create_service_app(settings=settings, routers=[])
    async with first.router.lifespan_context(first):
        pass
    second = create_service_app(settings=settings, routers=[])
    built_later = Built()
    async with second.router.lifespan_context(second):
        assert _tracked(built_later)  # not kept for ever by a second freeze
