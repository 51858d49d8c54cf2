import pytest
from payments.core.config import Settings
from payments.main import create_app
from payplane_core.ids import new_id
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.db import fresh_database
from tests.support.internal import internal as internal_settings
from tests.support.payments import client_for


@pytest.fixture(scope="package")
async def db_url():
    return await fresh_database("payments", "payments")


@pytest.fixture(scope="package")
async def app(db_url, app_clock):
    app = create_app(
        Settings(
            DATABASE_URL=db_url,
            DB_POOL_SIZE=25,
            RECONCILE_ENABLED=False,  # test_reconcile.py drives it with its own clock
            **internal_settings("payments"),
        ),
        clock=app_clock.now,
    )
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="package")
async def db(db_url):
    engine = create_async_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def merchant_id() -> str:
    return new_id("mer")


@pytest.fixture
async def client(app, merchant_id):
    async with client_for(app, merchant_id=merchant_id) as c:
        yield c


@pytest.fixture
async def internal(app):
    async with client_for(app, caller="providers") as c:
        yield c
