"""Internal registry API: the ``payplane`` command, the operator and the webhooks service."""

import re

from fastapi import APIRouter, Response
from payplane_core.problems import Problem

from providers import registry
from providers.api.deps import Caller, Flow, Sessions
from providers.flow import breaker_for
from providers.models import Provider
from providers.schemas import (
    NAME_PATTERN,
    CircuitOut,
    ProviderIn,
    ProviderList,
    ProviderOut,
    WebhookSecret,
    WebhookSecrets,
)

router = APIRouter(prefix="/internal/v1/providers", tags=["providers"])

# Callers that may read provider webhook secrets (to verify provider callbacks).
SECRET_READERS = frozenset({"webhooks"})


async def _out(flow: Flow, provider: Provider) -> ProviderOut:
    state = await breaker_for(flow, provider).state()
    out = ProviderOut.model_validate(provider, from_attributes=True)
    out.circuit = CircuitOut(open=state.open, retry_after_seconds=state.retry_after_seconds)
    out.healthy = flow.health.get(provider.name)
    return out


@router.get("", response_model=ProviderList)
async def list_providers(_: Caller, sessions: Sessions, flow: Flow) -> ProviderList:
    async with sessions() as session:
        providers = await registry.list_providers(session)
    return ProviderList(data=[await _out(flow, p) for p in providers])


@router.get("/webhook-secrets", response_model=WebhookSecrets)
async def webhook_secrets(caller: Caller, sessions: Sessions, flow: Flow) -> WebhookSecrets:
    if caller not in SECRET_READERS:
        raise Problem(403, "not-allowed", f"Caller {caller} may not read provider secrets.")
    async with sessions() as session:
        providers = await registry.list_providers(session, enabled_only=True)
    return WebhookSecrets(
        data=[
            WebhookSecret(
                name=p.name, webhook_secret=registry.secrets_of(p, box=flow.box).webhook_secret
            )
            for p in providers
        ]
    )


@router.put("/{name}", response_model=ProviderOut)
async def put_provider(
    name: str, body: ProviderIn, _: Caller, sessions: Sessions, flow: Flow, response: Response
) -> ProviderOut:
    _check_name(name)
    try:
        currencies = body.currency_list()
        async with sessions.begin() as session:
            provider, created = await registry.register_provider(
                session,
                box=flow.box,
                name=name,
                endpoint=str(body.endpoint),
                api_key=body.api_key,
                webhook_secret=body.webhook_secret,
                display_name=body.display_name,
                priority=body.priority,
                weight=body.weight,
                currencies=currencies,
                timeout_ms=body.timeout_ms,
                failure_threshold=body.failure_threshold,
                open_seconds=body.open_seconds,
                enabled=body.enabled,
            )
    except ValueError as exc:
        raise Problem(422, "invalid-provider", str(exc)) from None
    response.status_code = 201 if created else 200
    return await _out(flow, provider)


@router.get("/{name}", response_model=ProviderOut)
async def get_provider(name: str, _: Caller, sessions: Sessions, flow: Flow) -> ProviderOut:
    async with sessions() as session:
        provider = await registry.get_provider(session, name=name)
    if provider is None:
        raise Problem(404, "provider-not-found", f"No provider {name}.")
    return await _out(flow, provider)


@router.delete("/{name}", response_model=ProviderOut)
async def disable_provider(name: str, _: Caller, sessions: Sessions, flow: Flow) -> ProviderOut:
    """Disabled, not deleted: its attempts stay meaningful and its webhooks stop verifying."""
    async with sessions.begin() as session:
        provider = await registry.set_enabled(session, name=name, enabled=False)
    if provider is None:
        raise Problem(404, "provider-not-found", f"No provider {name}.")
    return await _out(flow, provider)


@router.post("/{name}/circuit/reset", response_model=ProviderOut)
async def reset_circuit(name: str, _: Caller, sessions: Sessions, flow: Flow) -> ProviderOut:
    async with sessions() as session:
        provider = await registry.get_provider(session, name=name)
    if provider is None:
        raise Problem(404, "provider-not-found", f"No provider {name}.")
    await breaker_for(flow, provider).reset()
    return await _out(flow, provider)


def _check_name(name: str) -> None:
    if not re.fullmatch(NAME_PATTERN, name):
        raise Problem(422, "invalid-provider", "The name must be a lower-case DNS label.")
