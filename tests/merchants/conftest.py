import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.db import fresh_database
from tests.support.merchants import REDIS_URL, merchants_service


@pytest.fixture(scope="package")
async def db_url():
    return await fresh_database("merchants", "merchants")


@pytest.fixture(scope="package")
async def svc(db_url):
    async with merchants_service(db_url=db_url) as service:
        yield service


@pytest.fixture(scope="package")
async def db(db_url):
    engine = create_async_engine(db_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def client(svc):
    async with svc.client("operator") as c:
        yield c


@pytest.fixture(scope="package")
async def redis():
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()
