"""Envoy's own replies as RFC 9457 problem documents (the connection manager's local-reply
mappers). Matched by status where only Envoy answers with it (404/405: unknown route or
method; 413: body over the limit) and by response flag where the gateway may answer with the
same status (its denials keep their own body)."""

from typing import Any

from payplane_ingress.render.common import header, problem

LOCAL_REPLIES = [
    ({"status": 404}, 404, "not-found", "Not Found", "No such route in the payplane API."),
    ({"status": 405}, 405, "method-not-allowed", "Method Not Allowed", "See the Allow header."),
    ({"status": 413}, 413, "body-too-large", "Content Too Large", "The request body is too large."),
    (
        {"status": 510},
        429,
        "rate-limited",
        "Too Many Requests",
        "Too many requests from this address.",
    ),
    ({"flag": "UO"}, 503, "overloaded", "Service Unavailable", "At capacity; retry later."),
    (
        {"flag": "UF"},
        503,
        "upstream-unavailable",
        "Service Unavailable",
        "A service is unreachable.",
    ),
    ({"flag": "UH"}, 503, "upstream-unavailable", "Service Unavailable", "No healthy instance."),
    (
        {"flag": "UT"},
        504,
        "upstream-timeout",
        "Gateway Timeout",
        "A service did not answer in time.",
    ),
    (
        {"flag": "UAEX", "status": 502},
        503,
        "authorization-unavailable",
        "Service Unavailable",
        "Requests cannot be authorized right now; retry later.",
    ),
    (
        {"status": 508},
        429,
        "route-rate-limited",
        "Too Many Requests",
        "Too many requests on this route; retry later.",
    ),
    # A reset or closed upstream connection ("upstream connect error or disconnect/reset"):
    # the request may or may not have been applied, so 502, and a retry with the same
    # Idempotency-Key is safe.
    *[
        (
            {"flag": flag},
            502,
            "upstream-reset",
            "Bad Gateway",
            "A service closed the connection before answering; retry (with the same "
            "Idempotency-Key for a create).",
        )
        for flag in ("UC", "UR", "URX", "LR", "UMSDR", "UPE")
    ],
    # Anything else Envoy itself answers with 5xx (the gateway's denials, flag UAEX, kept
    # their own problem body through the pass-through mapper before this one).
    (
        {"status_at_least": 500},
        502,
        "upstream-error",
        "Bad Gateway",
        "The request could not be completed; retry later.",
    ),
]
# Envoy's own 4xx replies (malformed requests, header limits, timeouts) keep their status.
GENERIC_4XX = {
    "type": "https://payplane.dev/problems/bad-request",
    "title": "Request refused by the ingress",
    "status": "%RESPONSE_CODE%",
    "detail": "%RESPONSE_CODE_DETAILS%",
    "request_id": "%REQ(X-REQUEST-ID)%",
}


def _status_filter(op: str, status: int) -> dict[str, Any]:
    value = {"default_value": status, "runtime_key": f"local_reply_{op.lower()}_{status}"}
    return {"status_code_filter": {"comparison": {"op": op, "value": value}}}


def _reply_filter(match: dict[str, Any]) -> dict[str, Any]:
    filters = []
    if "flag" in match:
        filters.append({"response_flag_filter": {"flags": [match["flag"]]}})
    if "status" in match:
        filters.append(_status_filter("EQ", match["status"]))
    if "status_at_least" in match:
        filters.append(_status_filter("GE", match["status_at_least"]))
    return filters[0] if len(filters) == 1 else {"and_filter": {"filters": filters}}


def _mapper(filter_: dict[str, Any], body: dict[str, Any], status: int | None) -> dict[str, Any]:
    mapper: dict[str, Any] = {
        "filter": filter_,
        "body_format_override": {
            "json_format": body,
            "content_type": "application/problem+json",
        },
    }
    if status is not None:
        mapper["status_code"] = status
    if status is not None and status >= 500 or status == 429:
        mapper["headers_to_add"] = [header("retry-after", "1")]
    return mapper


def local_reply_config() -> dict[str, Any]:
    mappers = [
        _mapper(_reply_filter(match), problem(status, slug, title, detail), status)
        for match, status, slug, title, detail in LOCAL_REPLIES
    ]
    # The gateway's denials (ext_authz, flag UAEX) carry their own problem body: first match
    # wins, and this mapper changes nothing, so the catch-alls below never touch them.
    passthrough = {"filter": _reply_filter({"flag": "UAEX"})}
    uaex_at = next(i for i, (match, *_) in enumerate(LOCAL_REPLIES) if match.get("flag") == "UAEX")
    mappers.insert(uaex_at + 1, passthrough)
    # Last: every other reply Envoy makes itself, as a problem with its own status.
    mappers.append(_mapper(_reply_filter({"status_at_least": 400}), GENERIC_4XX, None))
    return {"mappers": mappers}
