"""Settings default to production, and production refuses placeholder and short secrets."""

from pathlib import Path

import pytest
from gateway.core.config import Settings as GatewaySettings
from merchants.core.config import Settings as MerchantsSettings
from payments.core.config import Settings as PaymentsSettings
from payplane_core.internal_auth import generate_key
from payplane_core.settings import Environment
from providers.core.config import Settings as ProvidersSettings
from pydantic import ValidationError
from simulator.core.config import Settings as SimulatorSettings
from webhooks.core.config import Settings as WebhooksSettings
from workers.notifier.config import NotifierSettings
from workers.relay.config import RelaySettings

SERVICES = Path(__file__).resolve().parents[2] / "services"
STRONG = "s3cr3t-" + "x" * 40
WHSEC = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
# Each service's secrets, given real values: with these it starts in production.
REAL = {
    GatewaySettings: {"INTERNAL_SIGNING_KEY": generate_key(), "ENCRYPTION_KEYS": [STRONG]},
    MerchantsSettings: {"ENCRYPTION_KEYS": [STRONG]},
    ProvidersSettings: {"INTERNAL_SIGNING_KEY": generate_key(), "ENCRYPTION_KEYS": [STRONG]},
    WebhooksSettings: {"INTERNAL_SIGNING_KEY": generate_key()},
    NotifierSettings: {"INTERNAL_SIGNING_KEY": generate_key()},
    SimulatorSettings: {"SIM_API_KEY": STRONG, "SIM_WEBHOOK_SECRET": WHSEC},
}
EXAMPLES = {
    GatewaySettings: "gateway",
    MerchantsSettings: "merchants",
    ProvidersSettings: "providers",
    WebhooksSettings: "webhooks",
    NotifierSettings: "workers",
    SimulatorSettings: "simulator",
}


@pytest.fixture(autouse=True)
def no_environment(monkeypatch):
    monkeypatch.delenv("ENVIRONMENT", raising=False)


@pytest.mark.parametrize(
    "settings",
    [*REAL, PaymentsSettings, RelaySettings],
    ids=lambda s: s.__module__.split(".")[0] + "." + s.__name__,
)
def test_the_default_environment_is_production(settings):
    assert settings(_env_file=None, **REAL.get(settings, {})).ENVIRONMENT == Environment.PRODUCTION


@pytest.mark.parametrize("settings", list(REAL), ids=lambda s: s.__module__.split(".")[0])
def test_every_secret_is_refused_when_default_example_or_short(settings):
    settings(_env_file=None, **REAL[settings])  # real values start
    for field in REAL[settings]:
        for weak in ("", "changethis-local-only", "sk_sim_change_me", "short-but-random-9f3a"):
            value = [weak] if isinstance(REAL[settings][field], list) else weak
            with pytest.raises(ValidationError, match=field):
                settings(_env_file=None, **(REAL[settings] | {field: value}))


@pytest.mark.parametrize("settings", list(EXAMPLES), ids=lambda s: s.__module__.split(".")[0])
def test_env_example_files_cannot_start_in_production(settings):
    example = SERVICES / EXAMPLES[settings] / ".env.example"
    with pytest.raises(ValidationError, match="outside local mode|must be set"):
        settings(_env_file=example, ENVIRONMENT="production")
    settings(_env_file=example)  # the file itself says local: fine on a laptop


def test_local_mode_accepts_placeholders():
    assert SimulatorSettings(_env_file=None, ENVIRONMENT="local").SIM_API_KEY


def test_malformed_caller_keys_stop_the_start():
    with pytest.raises(ValidationError, match="caller key entry"):
        PaymentsSettings(_env_file=None, INTERNAL_CALLER_KEYS="gateway-without-a-key")
