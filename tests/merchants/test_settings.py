import pytest
from gateway.core.config import Settings as GatewaySettings
from merchants.core.config import Settings as MerchantsSettings
from pydantic import ValidationError


@pytest.mark.parametrize("settings", [MerchantsSettings, GatewaySettings])
def test_local_default_encryption_key_refused_outside_local(settings):
    with pytest.raises(ValidationError, match="ENCRYPTION_KEYS"):
        settings(ENVIRONMENT="production", INTERNAL_SIGNING_SECRETS=["real-secret"])
    settings(ENVIRONMENT="production", INTERNAL_SIGNING_SECRETS=["real"], ENCRYPTION_KEYS=["k2,k1"])
