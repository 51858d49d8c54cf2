"""Which webhook URLs the platform may call (payplane_core.egress); no network but loopback."""

import pytest
from payplane_core import egress

LOOPBACK = egress.parse_allowlist(["127.0.0.1/32", "::1/128"])


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:9/x",  # resolves to loopback
        "http://[::1]/x",
        "http://169.254.169.254/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://[fe80::1]/",
        "http://[fc00::1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://224.0.0.1/",
        "http://0.0.0.0/",
        "ftp://93.184.215.14/",
        "http:///nohost",
    ],
)
async def test_non_public_targets_are_refused(url):
    with pytest.raises(egress.UnsafeUrl):
        await egress.check_url(url, [], must_resolve=True)


async def test_public_addresses_pass_and_are_pinned():
    pinned = await egress.check_url("https://93.184.215.14:8443/h", [], must_resolve=True)
    assert pinned.address == "93.184.215.14" and pinned.host == "93.184.215.14"


async def test_the_allowlist_opens_only_what_it_lists():
    pinned = await egress.check_url("http://localhost:9/x", LOOPBACK, must_resolve=True)
    assert pinned.host == "localhost" and pinned.address in ("127.0.0.1", "::1")
    with pytest.raises(egress.UnsafeUrl):
        await egress.check_url("http://10.0.0.1/", LOOPBACK, must_resolve=True)


async def test_a_name_that_does_not_resolve_now_is_checked_again_later():
    url = "http://does-not-exist.invalid/x"
    assert await egress.check_url(url, [], must_resolve=False) is None
    with pytest.raises(egress.UnsafeUrl, match="does not resolve"):
        await egress.check_url(url, [], must_resolve=True)
