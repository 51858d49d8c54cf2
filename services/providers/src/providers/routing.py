"""Which providers may take a payment, and in which order (pure: no I/O)."""

import random
from collections.abc import Collection, Iterable
from itertools import groupby

from providers.models import Provider


def eligible(
    providers: Iterable[Provider], *, currency: str, allowed: Collection[str] | None
) -> list[Provider]:
    """Enabled, supporting the currency (no list = all), and allowed for the merchant
    (``allowed`` None = no restriction; empty = none allowed)."""
    return [
        p
        for p in providers
        if p.enabled
        and (not p.currencies or currency in p.currencies)
        and (allowed is None or p.name in allowed)
    ]


def order(
    providers: Iterable[Provider], *, payment_id: str, unhealthy: Collection[str] = ()
) -> list[Provider]:
    """Lower priority number first; within one priority a weighted random order.

    The randomness is seeded with the payment id, so a redelivered payment tries providers in
    the same order (its earlier attempts' provider first). Providers failing their health probe
    go last, not away: a probe can be wrong, a charge attempt is the real test.
    """
    rng = random.Random(payment_id)  # noqa: S311 - load spreading, not security
    ranked: list[Provider] = []
    by_priority = sorted(providers, key=lambda p: (p.priority, p.name))
    for _, group in groupby(by_priority, key=lambda p: p.priority):
        # Efraimidis-Spirakis: sorting by u^(1/w) is a weighted sample without replacement.
        ranked += sorted(group, key=lambda p: rng.random() ** (1.0 / p.weight), reverse=True)
    return [p for p in ranked if p.name not in unhealthy] + [
        p for p in ranked if p.name in unhealthy
    ]
