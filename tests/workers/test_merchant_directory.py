"""The notifier's cache of merchants' webhook URL and secret follows every change at once: an
entry is used only while the merchant's version in Redis (bumped by merchants) is unchanged."""

import uuid

import httpx
from redis.asyncio import Redis
from workers.notifier.directory import MerchantDirectory

from tests.support.internal import GatewayAuth
from tests.support.pipeline import MERCHANTS_REDIS_URL


async def test_a_new_url_or_secret_is_used_at_once(merchants_url):
    admin = httpx.AsyncClient(
        base_url=merchants_url,
        auth=GatewayAuth(audience="merchants", caller="cli", scopes=(), key_id=""),
        timeout=10,
    )
    redis = Redis.from_url(MERCHANTS_REDIS_URL)
    async with admin:
        created = await admin.post(
            "/internal/v1/merchants",
            json={"name": f"dir-{uuid.uuid4().hex[:10]}", "webhook_url": "http://127.0.0.1:9/a"},
        )
        merchant_id = created.json()["credentials"]["merchant_id"]
        directory = MerchantDirectory(
            base_url=merchants_url,
            auth=GatewayAuth(audience="merchants", caller="notifier", scopes=(), key_id=""),
            redis=redis,
            cache_seconds=300,
        )
        asked: list[str] = []

        async def count(request: httpx.Request) -> None:
            asked.append(request.url.path)

        directory._client.event_hooks["request"].append(count)
        first = await directory.target(merchant_id)
        assert (await directory.target(merchant_id)) == first and len(asked) == 1  # cached

        await admin.patch(
            f"/internal/v1/merchants/{merchant_id}", json={"webhook_url": "http://127.0.0.1:9/b"}
        )
        assert (await directory.target(merchant_id)).url == "http://127.0.0.1:9/b"
        rotated = await admin.post(
            f"/internal/v1/merchants/{merchant_id}/credentials/rotate", json={}
        )
        secret = rotated.json()["webhook_secret"]
        assert (await directory.target(merchant_id)).secrets[0] == secret != first.secrets[0]
        assert len(asked) == 3
    await directory.aclose()
    await redis.aclose()
