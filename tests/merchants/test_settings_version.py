"""A change to a merchant reaches the providers service's cache of its allowed providers at
once: the cache holds an entry only while the merchant's version in Redis is unchanged."""

from providers.platform import MerchantsClient
from redis.asyncio import Redis


async def test_allowed_providers_are_cached_until_the_merchant_changes(svc, client, redis):
    created = await svc.create(allowed_providers=["sim-a"])
    merchant_id = created["merchant"]["id"]
    asked: list[str] = []

    async def count(request) -> None:
        asked.append(request.url.path)

    async with svc.client("providers") as http:
        http.event_hooks["request"].append(count)
        merchants = MerchantsClient(http, redis)
        assert await merchants.allowed_providers(merchant_id) == ["sim-a"]
        assert await merchants.allowed_providers(merchant_id) == ["sim-a"]
        assert len(asked) == 1  # the second answer came from the cache

        changed = await client.patch(
            f"/internal/v1/merchants/{merchant_id}", json={"allowed_providers": ["sim-b"]}
        )
        assert changed.status_code == 200, changed.text
        assert await merchants.allowed_providers(merchant_id) == ["sim-b"]  # not in 30 s: now
        assert len(asked) == 2

        # Redis unreachable: no cached answer is trusted, each payment asks again.
        unsure = MerchantsClient(http, Redis.from_url("redis://127.0.0.1:1/0"))
        for _ in range(2):
            assert await unsure.allowed_providers(merchant_id) == ["sim-b"]
        assert len(asked) == 4
