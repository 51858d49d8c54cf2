"""Provider resources → the providers registry (secrets read from the referenced Secrets)
and the ingress routing (each Provider's callback bucket, see ``payplane_operator.routing``).

A Provider whose Secret does not exist yet waits (Ready=False, SecretNotFound); the Secrets it
references are watched, so creating or changing one re-reconciles it.
"""

from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from payplane_core.clients import Unavailable

from payplane_operator import status as conditions
from payplane_operator.kube import NamespaceSecrets
from payplane_operator.metrics import observed
from payplane_operator.reconcile import Permanent, reconcile_provider
from payplane_operator.routing import webhook_limit

PROVIDERS = ("payplane.io", "v1alpha1", "providers")
SECRET_REFS = ("apiKeySecretRef", "webhookSecretRef")


def _alive(meta: kopf.Meta, **_: Any) -> bool:
    return not meta.get("deletionTimestamp")


@kopf.index(*PROVIDERS, when=_alive)
def provider_routes(name: str, spec: kopf.Spec, **_: Any) -> dict:
    """Every live Provider's callback limit: the routing is rendered from all of them."""
    return {name: webhook_limit(spec)}


@kopf.index(*PROVIDERS, when=_alive)
def providers_by_secret(
    namespace: str, name: str, spec: kopf.Spec, status: kopf.Status, **_: Any
) -> dict:
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", [])
    )
    return {(namespace, spec[ref]["name"]): (name, ready) for ref in SECRET_REFS if ref in spec}


def _limits(provider_routes: kopf.Index) -> dict[str, tuple[int, int] | None]:
    return {name: next(iter(store)) for name, store in provider_routes.items()}


async def _publish(memo: kopf.Memo, provider_routes: kopf.Index) -> None:
    try:
        await memo.routing.publish(_limits(provider_routes))
    except ApiException as exc:
        raise kopf.TemporaryError(
            f"routing ConfigMap: {exc.status} {exc.reason}", delay=memo.config.RETRY_DELAY_SECONDS
        ) from None


@kopf.on.resume(*PROVIDERS)
@kopf.on.create(*PROVIDERS)
@kopf.on.update(*PROVIDERS)
async def register(
    body: kopf.Body,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    name: str,
    namespace: str,
    patch: kopf.Patch,
    memo: kopf.Memo,
    provider_routes: kopf.Index,
    **_: Any,
) -> None:
    previous = status.get("conditions")
    with observed("Provider") as outcome:
        try:
            await reconcile_provider(
                memo.platform, name=name, spec=spec, secrets=NamespaceSecrets(memo.kube, namespace)
            )
        except (Permanent, Unavailable) as exc:
            permanent = isinstance(exc, Permanent)
            outcome.value = "permanent" if permanent else "retry"
            reason = exc.reason if permanent else "DependencyUnavailable"
            ready = conditions.condition(previous, "Ready", False, reason, str(exc))
            patch.status["conditions"] = conditions.merge(previous, ready)
            if permanent:
                kopf.warn(body, reason=reason, message=str(exc))
                return
            raise kopf.TemporaryError(str(exc), delay=memo.config.RETRY_DELAY_SECONDS) from None
        await _publish(memo, provider_routes)
    ready = conditions.condition(
        previous, "Ready", True, "Registered", "Registered and routed at the ingress."
    )
    patch.status["conditions"] = conditions.merge(previous, ready)
    patch.status["observedGeneration"] = meta.get("generation")
    kopf.info(body, reason="Registered", message=f"Provider {name} registered.")


@kopf.on.delete(*PROVIDERS)
async def unregister(name: str, memo: kopf.Memo, provider_routes: kopf.Index, **_: Any) -> None:
    """Disabled in the registry (its past attempts stay meaningful), its route removed (the
    index no longer holds a Provider being deleted)."""
    with observed("Provider") as outcome:
        try:
            await memo.platform.providers.disable(name)
        except Unavailable as exc:
            outcome.value = "retry"
            raise kopf.TemporaryError(str(exc), delay=memo.config.RETRY_DELAY_SECONDS) from None
        await _publish(memo, provider_routes)


@kopf.on.event("v1", "secrets")
async def secret_changed(
    type: str | None,  # noqa: A002 - kopf's keyword
    namespace: str,
    name: str,
    meta: kopf.Meta,
    memo: kopf.Memo,
    providers_by_secret: kopf.Index,
    **_: Any,
) -> None:
    """A referenced Secret appeared or changed: touch its Providers (their own handler, one
    path, registers them). The first sight of a Secret after a start touches only the
    Providers still waiting for it: the others resumed anyway."""
    if type not in (None, "ADDED", "MODIFIED") or (namespace, name) not in providers_by_secret:
        return
    revision = str(meta.get("resourceVersion"))
    seen = memo.secret_revisions.get((namespace, name))
    memo.secret_revisions[(namespace, name)] = revision
    if seen == revision:
        return
    for provider, ready in providers_by_secret[(namespace, name)]:
        if seen is not None or not ready:
            await memo.kube.touch_provider(namespace, provider, revision)
