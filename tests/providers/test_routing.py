"""Provider order: priority, weight, currency, the merchant's allowed list, health."""

from collections import Counter

from providers.models import Provider
from providers.routing import eligible, order


def provider(name, priority=1, weight=1, currencies=(), enabled=True) -> Provider:
    return Provider(
        name=name, priority=priority, weight=weight, currencies=list(currencies), enabled=enabled
    )


def names(providers) -> list[str]:
    return [p.name for p in providers]


def test_lower_priority_number_first():
    ranked = order([provider("b", 2), provider("c", 3), provider("a", 1)], payment_id="pay_1")
    assert names(ranked) == ["a", "b", "c"]


def test_weights_share_traffic_within_a_priority():
    pair = [provider("heavy", weight=3), provider("light", weight=1)]
    firsts = Counter(order(pair, payment_id=f"pay_{i}")[0].name for i in range(4000))
    assert 0.70 < firsts["heavy"] / 4000 < 0.80


def test_order_is_stable_per_payment():
    pair = [provider("x"), provider("y")]
    assert all(
        names(order(pair, payment_id=f"pay_{i}")) == names(order(pair, payment_id=f"pay_{i}"))
        for i in range(50)
    )


def test_unhealthy_goes_last_not_away():
    ranked = order([provider("a", 1), provider("b", 2)], payment_id="p", unhealthy={"a"})
    assert names(ranked) == ["b", "a"]


def test_currency_allowed_and_enabled_filters():
    ps = [
        provider("eur", currencies=["EUR"]),
        provider("any"),
        provider("off", enabled=False),
        provider("usd", currencies=["USD"]),
    ]
    assert names(eligible(ps, currency="EUR", allowed=None)) == ["eur", "any"]
    assert names(eligible(ps, currency="EUR", allowed=["any", "usd"])) == ["any"]
    assert eligible(ps, currency="EUR", allowed=[]) == []
