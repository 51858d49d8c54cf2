import httpx
import pytest
from simulator.core.config import Settings
from simulator.main import create_app

from tests.support.live import Receiver, serve

API_KEY = "sk_sim_test"
SECRET = "whsec_" + "c2ltdWxhdG9yLXRlc3Qtc2VjcmV0LWJ5dGVz"


@pytest.fixture
async def receiver():
    receiver = Receiver()
    async with serve(receiver.app()) as url:
        receiver.url = url
        yield receiver


def sim_settings(receiver, **overrides) -> Settings:
    """A simulator calling back ``receiver``, fast (``overrides`` change any setting)."""
    return Settings(
        **{
            "SERVICE_NAME": "sim-t",
            "SIM_API_KEY": API_KEY,
            "SIM_WEBHOOK_SECRET": SECRET,
            "SIM_WEBHOOK_URL": f"{receiver.url}/api/v1/payments/webhook",
            "SIM_CALLBACK_DELAY_MS": 0,
            "SIM_FAIL_DELAY_MS": 300,
            "SIM_TIMEOUT_HOLD_SECONDS": 0.3,
            "SIM_CALLBACK_BACKOFF_BASE_SECONDS": 0.05,
        }
        | overrides
    )


@pytest.fixture
async def sim(receiver):
    app = create_app(sim_settings(receiver))
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://sim.test",
            headers={"Authorization": f"Bearer {API_KEY}"},
        ) as client:
            client.app = app
            yield client
