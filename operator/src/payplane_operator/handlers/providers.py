"""Provider resources → the providers registry (secrets read from the referenced Secrets)."""

from typing import Any

import kopf
from payplane_core.clients import Unavailable

from payplane_operator import status as conditions
from payplane_operator.kube import NamespaceSecrets
from payplane_operator.metrics import observed
from payplane_operator.reconcile import Permanent, reconcile_provider

PROVIDERS = ("payplane.io", "v1alpha1", "providers")


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
    ready = conditions.condition(
        previous, "Ready", True, "Registered", "Registered in the providers registry."
    )
    patch.status["conditions"] = conditions.merge(previous, ready)
    patch.status["observedGeneration"] = meta.get("generation")
    kopf.info(body, reason="Registered", message=f"Provider {name} registered.")


@kopf.on.delete(*PROVIDERS)
async def unregister(name: str, memo: kopf.Memo, **_: Any) -> None:
    """Disabled in the registry (its past attempts stay meaningful), its route removed."""
    with observed("Provider") as outcome:
        try:
            await memo.platform.providers.disable(name)
        except Unavailable as exc:
            outcome.value = "retry"
            raise kopf.TemporaryError(str(exc), delay=memo.config.RETRY_DELAY_SECONDS) from None
