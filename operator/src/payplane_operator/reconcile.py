"""Spec → calls → credentials: the one reconciler behind ``kubectl apply`` (kopf) and
``payplane apply`` (the CLI). No Kubernetes here: the caller passes the resource's fields, the
platform's clients and a secret sink (a Kubernetes Secret, or locally a 0600 file).

Exactly one merchant per resource: the resource's uid is the merchant's external reference,
so creating again (after a crash, a retry, a second replica) returns the first merchant. Its
secrets were shown once; if they never reached the sink, new ones are issued by rotation.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from payplane_core.clients import MerchantsClient, ProvidersClient, Refused

# Exactly the keys of a Merchant's credentials Secret (the contract).
SECRET_KEYS = (
    "merchant_id",
    "api_key",
    "api_key_id",
    "read_key",
    "signing_secret",
    "webhook_secret",
)
DEFAULT_GRACE_SECONDS = 86_400


class Permanent(Exception):
    """The resource cannot succeed as written (Ready=False with this reason, no retry loop)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class SecretSink(Protocol):
    async def read(self, name: str) -> dict[str, str] | None: ...

    async def write(self, name: str, data: dict[str, str]) -> None: ...


@dataclass(frozen=True)
class Platform:
    merchants: MerchantsClient
    providers: ProvidersClient


@dataclass(frozen=True)
class MerchantResult:
    merchant_id: str
    plan: str
    # What happened to the credentials: "issued", "reissued", "rotated" or None (unchanged).
    credentials: str | None


def secret_name(merchant: str) -> str:
    return f"{merchant}-credentials"


def grace_of(spec: Mapping[str, Any]) -> int:
    return int(spec.get("credentials", {}).get("rotationGraceSeconds", DEFAULT_GRACE_SECONDS))


def merchant_fields(spec: Mapping[str, Any], plan: Mapping[str, Any] | None) -> dict[str, Any]:
    """The merchants service's fields: the Merchant's overrides, else its Plan's limits."""
    if plan is None:
        raise Permanent("UnknownPlan", f"Plan {spec.get('plan')!r} does not exist.")
    rate = spec.get("rateLimit") or plan["rateLimit"]
    quota = spec.get("quota") or plan["quota"]
    fields: dict[str, Any] = {
        "plan": spec["plan"],
        "rate_limit": {"requests_per_second": rate["requestsPerSecond"], "burst": rate["burst"]},
        "quota": {"payments_per_month": quota["paymentsPerMonth"]},
        "allowed_providers": list(spec.get("allowedProviders", [])),
    }
    if spec.get("displayName"):
        fields["display_name"] = spec["displayName"]
    if spec.get("webhookUrl"):
        fields["webhook_url"] = spec["webhookUrl"]
    return fields


def secret_view(credentials: Mapping[str, Any]) -> dict[str, str]:
    return {key: credentials[key] for key in SECRET_KEYS}


async def reconcile_merchant(
    platform: Platform,
    sink: SecretSink,
    *,
    name: str,
    uid: str,
    spec: Mapping[str, Any],
    plan: Mapping[str, Any] | None,
    rotate: bool = False,
) -> MerchantResult:
    """Create or update the merchant; make sure the sink holds its current credentials.

    ``rotate``: issue new keys and webhook secret (old keys work for the grace period).
    """
    fields = merchant_fields(spec, plan)
    try:
        created = await platform.merchants.create({"name": name, "external_ref": uid} | fields)
    except Refused as exc:
        if exc.status == 409:
            raise Permanent("NameTaken", f"Another merchant is named {name}.") from None
        raise Permanent("Refused", str(exc)) from None
    merchant_id = created["merchant"]["id"]
    if created["credentials"] is not None:
        await sink.write(name, secret_view(created["credentials"]))
        return MerchantResult(merchant_id, spec["plan"], "issued")
    # It existed: bring it to the spec (the service drops the gateway's cached limits).
    await platform.merchants.update(merchant_id, fields)
    stored = await sink.read(name)
    if stored is None or stored.get("merchant_id") != merchant_id:
        outcome = "reissued"  # lost before it was stored (crash) or deleted by hand
    elif rotate:
        outcome = "rotated"
    else:
        return MerchantResult(merchant_id, spec["plan"], None)
    credentials = await platform.merchants.rotate(merchant_id, grace_seconds=grace_of(spec))
    await sink.write(name, secret_view(credentials))
    return MerchantResult(merchant_id, spec["plan"], outcome)


async def reissue_if_missing(
    platform: Platform, sink: SecretSink, *, name: str, merchant_id: str, spec: Mapping[str, Any]
) -> bool:
    """The Secret was deleted by hand: new credentials (the old keys keep their grace)."""
    stored = await sink.read(name)
    if stored is not None and stored.get("merchant_id") == merchant_id:
        return False
    credentials = await platform.merchants.rotate(merchant_id, grace_seconds=grace_of(spec))
    await sink.write(name, secret_view(credentials))
    return True


async def remove_merchant(platform: Platform, *, name: str, uid: str) -> str | None:
    """Revoke every key and deactivate the merchant made for this resource (if any)."""
    try:
        merchant = await platform.merchants.by_name(name)
    except Refused as exc:
        if exc.status == 404:
            return None
        raise
    if merchant.get("external_ref") != uid:
        return None  # made by someone else under that name (NameTaken): not ours to delete
    await platform.merchants.delete(merchant["id"])
    return merchant["id"]


def provider_fields(
    spec: Mapping[str, Any], *, api_key: str, webhook_secret: str
) -> dict[str, Any]:
    breaker = spec.get("circuitBreaker", {})
    fields = {
        "endpoint": spec["endpoint"],
        "api_key": api_key,
        "webhook_secret": webhook_secret,
        "priority": spec.get("priority", 100),
        "weight": spec.get("weight", 1),
        "currencies": list(spec.get("currencies", [])),
        "timeout_ms": spec.get("timeoutMs", 2000),
        "failure_threshold": breaker.get("failureThreshold", 5),
        "open_seconds": breaker.get("openSeconds", 30),
    }
    if spec.get("displayName"):
        fields["display_name"] = spec["displayName"]
    return fields


async def reconcile_provider(
    platform: Platform, *, name: str, spec: Mapping[str, Any], secrets: "SecretReader"
) -> dict[str, Any]:
    """Register (or update) the provider with the secrets its refs point at."""
    api_key = await secrets.value(spec["apiKeySecretRef"])
    webhook_secret = await secrets.value(spec["webhookSecretRef"])
    try:
        return await platform.providers.put(
            name, provider_fields(spec, api_key=api_key, webhook_secret=webhook_secret)
        )
    except Refused as exc:
        raise Permanent("Refused", str(exc)) from None


class SecretReader(Protocol):
    async def value(self, ref: Mapping[str, str]) -> str:
        """The value at ``{name, key}``; raises Permanent("SecretNotFound", …) if absent."""
        ...
