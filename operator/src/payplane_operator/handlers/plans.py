"""Plan resources: a changed Plan re-reconciles the Merchants that use it."""

from typing import Any

import kopf

PLANS = ("payplane.io", "v1alpha1", "plans")


@kopf.on.event(*PLANS)
async def plan_changed(
    type: str | None,  # noqa: A002 - kopf's keyword
    name: str,
    meta: kopf.Meta,
    memo: kopf.Memo,
    merchants_by_plan: kopf.Index,
    **_: Any,
) -> None:
    """Touch each Merchant on this plan: its own handler (one path) applies the new limits.

    Plans are only read (no patch, no finalizer): at startup every Merchant resumes anyway.
    """
    if type not in ("ADDED", "MODIFIED"):
        return
    revision = str(meta.get("resourceVersion") or meta.get("generation"))
    for namespace, merchant in merchants_by_plan.get(name, []):
        await memo.kube.touch_merchant(namespace, merchant, revision)
