"""The test API server itself: a request costs the same however many came before it.

KMock's own dispatch re-filtered the whole request history on every request, so the emulator
(sharing the event loop with the operator under test) slowed down as a test run went on: the
100-Merchant benchmark spent most of its CPU there, and the package-wide emulator of these tests
kept getting slower with every Merchant's 1-second Secret check.
"""

from tests.support.kube import KubeClient, emulator

SECRETS = "v1/secrets"


class History(list):
    """The emulator's request history, counting how often it is read through."""

    scans = 0

    def __iter__(self):
        self.scans += 1
        return super().__iter__()


async def test_requests_are_served_without_reading_the_whole_history():
    async with emulator() as (emu, url):
        kube = KubeClient(url)
        emu._requests = History(emu._requests)
        for i in range(20):
            body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": f"s{i}"}}
            await kube.create(SECRETS, body, "ns")
            assert (await kube.get(SECRETS, f"s{i}", "ns"))["metadata"]["name"] == f"s{i}"
        await kube.patch(SECRETS, "s3", {"data": {"k": "dg=="}}, "ns")
        await kube.delete(SECRETS, "s4", "ns")
        names = {s["metadata"]["name"] for s in await kube.list(SECRETS, "ns")}
        await kube.aclose()
    assert names == {f"s{i}" for i in range(20)} - {"s4"}
    assert len(emu._requests) == 20 * 2 + 3  # every request is still recorded, for assertions
    assert emu._requests.scans == 0
