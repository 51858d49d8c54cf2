"""The generated Envoy configuration: valid for the real Envoy, and saying what we mean."""

import socket
import ssl
import subprocess
import time

import httpx
import pytest
from payplane_core.internal_auth import INTERNAL_HEADERS
from payplane_ingress import render
from payplane_ingress.files import envoy_binary, validate_all, write_all
from payplane_ingress.model import Ingress, Tls, Upstream, contract_routes
from payplane_ingress.tls import ensure_self_signed


def ingress(**overrides) -> Ingress:
    defaults = dict(
        upstreams=(
            Upstream("payments", "127.0.0.1", 8101),
            Upstream("webhooks", "127.0.0.1", 8105),
        ),
        routes=contract_routes(),
    )
    return Ingress(**(defaults | overrides))


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_envoy_validates_every_generated_file(tmp_path, tls):
    config = ingress()
    if tls:
        cert, key = ensure_self_signed(tmp_path / "tls")
        config = ingress(tls=Tls(str(cert), str(key)))
    for result in validate_all(config, tmp_path / "envoy"):
        assert result.returncode == 0, result.stderr
        assert "OK" in result.stdout
        assert "Deprecated" not in result.stderr, result.stderr


def test_envoy_rejects_a_broken_config(tmp_path):
    """The validation is real: a bad regex fails it."""
    from payplane_ingress.model import Route

    broken = ingress(routes=(Route("bad", ("GET",), "payments", regex="(unclosed"),))
    results = validate_all(broken, tmp_path / "envoy")
    assert results[1].returncode != 0


def test_routes_are_exactly_the_contract():
    config = render.route_configuration(ingress())
    routes = config["virtual_hosts"][0]["routes"]
    served = {
        (
            r["match"].get("path") or r["match"].get("safe_regex", {}).get("regex"),
            r["match"]["headers"][0]["string_match"]["exact"],
        )
        for r in routes
        if "route" in r
    }
    assert served == {
        ("/api/v1/payments/webhook", "POST"),
        ("/api/v1/payments", "GET"),
        ("/api/v1/payments", "POST"),
        ("/api/v1/payments/[^/]+/show", "GET"),
        ("/api/v1/payments/[^/]+/tracking", "GET"),
    }
    assert routes[0]["name"] == "health" and routes[-1]["match"] == {"prefix": "/"}
    assert routes[-1]["direct_response"]["status"] == 404
    # POSTs are never retried by the ingress; reads are.
    for route in routes:
        if "route" in route:
            method = route["match"]["headers"][0]["string_match"]["exact"]
            assert ("retry_policy" in route["route"]) == (method == "GET")


def test_internal_headers_are_stripped_first_and_only_the_gateway_sets_them():
    hcm = render.listener(ingress())["filter_chains"][0]["filters"][0]["typed_config"]
    filters = [f["name"] for f in hcm["http_filters"]]
    assert filters == [
        "envoy.filters.http.header_mutation",
        "envoy.filters.http.local_ratelimit",
        "envoy.filters.http.ext_authz",
        "envoy.filters.http.router",
    ]
    removed = {
        m["remove"]
        for m in hcm["http_filters"][0]["typed_config"]["mutations"]["request_mutations"]
    }
    assert removed == set(INTERNAL_HEADERS)
    authz = hcm["http_filters"][2]["typed_config"]
    assert authz["failure_mode_allow"] is False
    assert authz["with_request_body"]["allow_partial_message"] is False
    upstream = {
        p["exact"]
        for p in authz["http_service"]["authorization_response"]["allowed_upstream_headers"][
            "patterns"
        ]
    }
    assert set(INTERNAL_HEADERS) <= upstream


def test_admin_listens_on_loopback_only():
    public = ingress(listen_host="0.0.0.0")  # noqa: S104 - the point of the test
    admin = render.bootstrap(public)["admin"]["address"]["socket_address"]
    assert admin["address"] == "127.0.0.1"


def test_hsts_only_with_tls(tmp_path):
    def response_headers(config):
        hcm = render.listener(config)["filter_chains"][0]["filters"][0]["typed_config"]
        mutations = hcm["http_filters"][0]["typed_config"]["mutations"]["response_mutations"]
        return {m["append"]["header"]["key"] for m in mutations}

    assert "strict-transport-security" not in response_headers(ingress())
    assert "strict-transport-security" in response_headers(ingress(tls=Tls("c", "k")))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_tls_termination_serves_https_with_hsts(tmp_path):
    """A real Envoy with the generated TLS listener: HTTPS works, plain HTTP does not."""
    cert, key = ensure_self_signed(tmp_path / "tls")
    port = _free_port()
    config = ingress(
        tls=Tls(str(cert), str(key)),
        listen_port=port,
        admin_port=_free_port(),
        access_log_path=str(tmp_path / "access.log"),
    )
    bootstrap = write_all(config, tmp_path / "envoy")
    envoy = subprocess.Popen(  # noqa: S603 - our own argv
        [envoy_binary(), "-c", str(bootstrap), "--use-dynamic-base-id", "-l", "error"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                trust = ssl.create_default_context(cafile=str(cert))
                response = httpx.get(f"https://127.0.0.1:{port}/health", verify=trust)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "Envoy did not come up"
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.headers["strict-transport-security"].startswith("max-age=")
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
    finally:
        envoy.terminate()
        envoy.wait(timeout=10)


def test_each_provider_gets_its_own_callback_bucket(tmp_path):
    config = ingress(routes=contract_routes({"sim-a": None, "acme": (5, 10)}))
    for result in validate_all(config, tmp_path / "envoy"):
        assert result.returncode == 0, result.stderr
    routes = render.route_configuration(config)["virtual_hosts"][0]["routes"]
    hook = next(r for r in routes if r["name"] == "provider-webhook-post")
    limit = hook["typed_per_filter_config"]["envoy.filters.http.local_ratelimit"]
    buckets = {
        d["entries"][0]["value"]: (
            d["token_bucket"]["tokens_per_fill"],
            d["token_bucket"]["max_tokens"],
        )
        for d in limit["descriptors"]
    }
    assert buckets == {"acme": (5, 10), "sim-a": (100, 200)}  # the default for sim-a
    assert limit["token_bucket"]["max_tokens"] == 200  # unnamed senders share the default
    header = limit["rate_limits"][0]["actions"][0]["request_headers"]
    assert header["header_name"] == "webhook-provider"
