"""Property-based fuzzing of a service's own OpenAPI schema with schemathesis.

Runs in a worker thread (the service under test keeps serving in the test's event loop) and
collects every response >= 500 and every response that breaks the schema, instead of failing
on the first (no shrinking: the examples are bounded so a run stays short).
"""

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from payplane_core.problems import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

# An answer breaks its schema when its status, its media type or its body is not documented.
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


def _send(client: httpx.Client, kwargs: dict) -> httpx.Response:
    body = {k: kwargs[k] for k in ("json", "data", "files") if kwargs.get(k) is not None}
    if "data" in body and isinstance(body["data"], (bytes, str)):
        body = {"content": body.pop("data")}
    return client.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers={k: str(v) for k, v in (kwargs.get("headers") or {}).items()},
        **body,
    )


def _designed(response: httpx.Response, faults: frozenset[str]) -> bool:
    """A 5xx the service exists to give (a simulated provider's injected fault), by its type."""
    if not faults or response.headers.get("content-type") != PROBLEM_MEDIA_TYPE:
        return False
    return response.json().get("type", "").removeprefix(PROBLEM_BASE) in faults


def _examples(client, base_url, operation, mode, max_examples, failures, faults) -> int:
    sent = 0

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case) -> None:
        nonlocal sent
        try:
            response = _send(client, case.as_transport_kwargs(base_url=base_url))
        except (httpx.InvalidURL, UnicodeEncodeError, ValueError):
            return  # not sendable as HTTP at all (the client refuses it)
        except httpx.TransportError as exc:  # the server dropped the connection: a failure too
            sent += 1
            failures.append(f"{operation.label} [{mode.value}] -> {type(exc).__name__}")
            return
        sent += 1
        label = f"{operation.label} [{mode.value}] -> {response.status_code}"
        if response.status_code >= 500 and not _designed(response, faults):
            failures.append(f"{label}: {response.text[:200]}")
            return
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, FailureGroup) as exc:  # noqa: BLE001 - collected, reported together
            failures.append(f"{label}: {str(exc)[:300]}")

    try:
        one()
    except Unsatisfiable:  # nothing to vary in this mode (e.g. no parameter to make invalid)
        pass
    return sent


def fuzz(
    base_url: str,
    auth: httpx.Auth,
    *,
    max_examples: int,
    schema: dict | None = None,
    designed_faults: frozenset[str] = frozenset(),
) -> tuple[int, list[str]]:
    """Every operation, valid and invalid inputs; returns (requests sent, failures).

    ``schema``: the OpenAPI document to hold the answers to, when ``base_url`` does not serve
    its own (the ingress). ``designed_faults``: problem types of 5xx answers that are the
    service's purpose (still held to the schema); any other 5xx is a failure."""
    raw = schema or httpx.get(base_url + "/openapi.json", timeout=10).json()
    loaded = schemathesis.openapi.from_dict(raw)
    failures: list[str] = []
    sent = 0
    with httpx.Client(base_url=base_url, auth=auth, timeout=15) as client:
        for result in loaded.get_all_operations():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                sent += _examples(
                    client, base_url, result.ok(), mode, max_examples, failures, designed_faults
                )
    return sent, failures


def public_paths(*schemas: dict) -> dict:
    """One OpenAPI document of the ``/api/v1`` operations of ``schemas`` (the public API)."""
    merged = {"openapi": schemas[0]["openapi"], "info": {"title": "payplane", "version": "1"}}
    merged["paths"] = {
        path: item
        for schema in schemas
        for path, item in schema["paths"].items()
        if path.startswith("/api/v1/")
    }
    components: dict = {}
    for schema in schemas:
        for name, value in schema.get("components", {}).get("schemas", {}).items():
            assert components.setdefault(name, value) == value, f"{name} differs between schemas"
    merged["components"] = {"schemas": components}
    return merged
