"""Property-based fuzzing of a service's own OpenAPI schema with schemathesis.

Runs in a worker thread (the service under test keeps serving in the test's event loop) and
collects every response >= 500 and every response that breaks the schema, instead of failing
on the first (no shrinking: the examples are bounded so a run stays short).
"""

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import response_schema_conformance


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


def _examples(client, base_url, operation, mode, max_examples, failures) -> int:
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
        sent += 1
        label = f"{operation.label} [{mode.value}] -> {response.status_code}"
        if response.status_code >= 500:
            failures.append(f"{label}: {response.text[:200]}")
            return
        try:
            case.validate_response(response, checks=[response_schema_conformance])
        except Exception as exc:  # noqa: BLE001 - collected, reported together
            failures.append(f"{label}: {str(exc)[:300]}")

    try:
        one()
    except Unsatisfiable:  # nothing to vary in this mode (e.g. no parameter to make invalid)
        pass
    return sent


def fuzz(base_url: str, auth: httpx.Auth, *, max_examples: int) -> tuple[int, list[str]]:
    """Every operation, valid and invalid inputs; returns (requests sent, failures)."""
    raw = httpx.get(base_url + "/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(raw)
    failures: list[str] = []
    sent = 0
    with httpx.Client(base_url=base_url, auth=auth, timeout=15) as client:
        for result in schema.get_all_operations():
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                sent += _examples(client, base_url, result.ok(), mode, max_examples, failures)
    return sent, failures
