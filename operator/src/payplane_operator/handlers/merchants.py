"""Merchant resources → merchants in the merchants service, keys in ``<name>-credentials``."""

import os
from typing import Any

import kopf
from payplane_core.clients import Unavailable

from payplane_operator import status as conditions
from payplane_operator.kube import MerchantSecretSink
from payplane_operator.metrics import observed
from payplane_operator.reconcile import (
    Permanent,
    reconcile_merchant,
    reissue_if_missing,
    remove_merchant,
    secret_name,
)

MERCHANTS = ("payplane.io", "v1alpha1", "merchants")
ROTATE = "payplane.io/rotate-credentials"
EVENTS = {
    "issued": "Credentials issued to Secret {secret}.",
    "reissued": "The Secret {secret} was missing: new credentials issued.",
    "rotated": "Credentials and webhook secret rotated; old keys work for {grace} s.",
}
# Read at import: kopf timers take their interval when the handler is declared.
SECRET_CHECK_SECONDS = float(os.environ.get("SECRET_CHECK_SECONDS", "10"))


@kopf.index(*MERCHANTS)
def merchants_by_plan(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> dict:
    return {spec.get("plan"): (namespace, name)}


@kopf.index("payplane.io", "v1alpha1", "plans")
def plans_by_name(name: str, spec: kopf.Spec, **_: Any) -> dict:
    return {name: dict(spec)}


def _not_ready(patch: kopf.Patch, status: kopf.Status, meta: kopf.Meta, exc: Exception) -> None:
    reason = exc.reason if isinstance(exc, Permanent) else "DependencyUnavailable"
    ready = conditions.condition(
        status.get("conditions"), "Ready", False, reason, str(exc), meta.get("generation")
    )
    patch.status["conditions"] = conditions.merge(status.get("conditions"), ready)
    patch.status["observedGeneration"] = meta.get("generation")


@kopf.on.resume(*MERCHANTS)
@kopf.on.create(*MERCHANTS)
@kopf.on.update(*MERCHANTS)
async def reconcile(
    body: kopf.Body,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    name: str,
    uid: str,
    patch: kopf.Patch,
    memo: kopf.Memo,
    plans_by_name: kopf.Index,
    **_: Any,
) -> None:
    requested = meta.get("annotations", {}).get(ROTATE)
    rotate = bool(requested) and requested != status.get("rotation") and "merchantId" in status
    plan = next(iter(plans_by_name.get(spec.get("plan"), [])), None)
    with observed("Merchant") as outcome:
        try:
            result = await reconcile_merchant(
                memo.platform,
                MerchantSecretSink(memo.kube, body),
                name=name,
                uid=uid,
                spec=spec,
                plan=plan,
                rotate=rotate,
            )
        except Permanent as exc:
            outcome.value = "permanent"
            _not_ready(patch, status, meta, exc)
            kopf.warn(body, reason=exc.reason, message=exc.message)
            return
        except Unavailable as exc:
            outcome.value = "retry"
            _not_ready(patch, status, meta, exc)
            raise kopf.TemporaryError(str(exc), delay=memo.config.RETRY_DELAY_SECONDS) from None
    _ready(patch, status, meta, body, result, spec)
    if requested:
        patch.status["rotation"] = requested


def _ready(patch, status, meta, body, result, spec) -> None:
    secret = secret_name(meta["name"])
    previous = status.get("conditions")
    updates = [
        conditions.condition(
            previous,
            "Ready",
            True,
            "Reconciled",
            "The merchant matches its spec.",
            meta.get("generation"),
        )
    ]
    if result.credentials is not None:
        message = EVENTS[result.credentials].format(
            secret=secret, grace=spec.get("credentials", {}).get("rotationGraceSeconds", 86400)
        )
        updates.append(
            conditions.condition(
                previous, "CredentialsIssued", True, result.credentials.title(), message
            )
        )
        kopf.info(body, reason=f"Credentials{result.credentials.title()}", message=message)
    patch.status["merchantId"] = result.merchant_id
    patch.status["credentialsSecret"] = secret
    patch.status["plan"] = result.plan
    patch.status["observedGeneration"] = meta.get("generation")
    patch.status["conditions"] = conditions.merge(previous, *updates)


@kopf.timer(*MERCHANTS, interval=SECRET_CHECK_SECONDS, initial_delay=SECRET_CHECK_SECONDS)
async def keep_credentials(
    body: kopf.Body,
    spec: kopf.Spec,
    meta: kopf.Meta,
    status: kopf.Status,
    name: str,
    patch: kopf.Patch,
    memo: kopf.Memo,
    **_: Any,
) -> None:
    """A Secret deleted by hand comes back with new credentials (status and an Event say so)."""
    merchant_id = status.get("merchantId")
    if not merchant_id or meta.get("deletionTimestamp"):
        return
    try:
        reissued = await reissue_if_missing(
            memo.platform,
            MerchantSecretSink(memo.kube, body),
            name=name,
            merchant_id=merchant_id,
            spec=spec,
        )
    except Unavailable as exc:
        raise kopf.TemporaryError(str(exc), delay=memo.config.RETRY_DELAY_SECONDS) from None
    if reissued:
        message = EVENTS["reissued"].format(secret=secret_name(name))
        issued = conditions.condition(
            status.get("conditions"), "CredentialsIssued", True, "Reissued", message
        )
        patch.status["conditions"] = conditions.merge(status.get("conditions"), issued)
        kopf.warn(body, reason="CredentialsReissued", message=message)


@kopf.on.delete(*MERCHANTS)
async def revoke(body: kopf.Body, name: str, uid: str, memo: kopf.Memo, **_: Any) -> None:
    """The finalizer: every key revoked and the merchant deactivated before the resource goes."""
    with observed("Merchant") as outcome:
        try:
            merchant_id = await remove_merchant(memo.platform, name=name, uid=uid)
        except Unavailable as exc:
            outcome.value = "retry"
            raise kopf.TemporaryError(str(exc), delay=memo.config.RETRY_DELAY_SECONDS) from None
    if merchant_id:
        kopf.info(
            body, reason="Revoked", message=f"Merchant {merchant_id} deactivated, keys revoked."
        )
