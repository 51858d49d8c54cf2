"""One pure-ASGI middleware: request id, body limit, access log and HTTP metrics.

Pure ASGI (not BaseHTTPMiddleware) because it sits on every request's hot path.
"""

import json
import logging
import time

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payplane_core.context import accept_or_new_request_id, request_id_var
from payplane_core.problems import PROBLEM_MEDIA_TYPE, problem_body
from payplane_core.telemetry import attach_sampled_out, detach, exemplar

access_log = logging.getLogger("payplane.access")

REQUESTS = Counter(
    "payplane_http_requests_total", "HTTP requests served", ["service", "method", "route", "status"]
)
LATENCY = Histogram(
    "payplane_http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class _BodyTooLarge(Exception):
    pass


# Headers that carry one value: a second copy could mean one thing to a signature check or an
# intermediary and another to the service, so it is refused (400). Provider-webhook headers are
# not here: the webhooks service refuses their duplicates itself, with an audit row.
SINGLE_VALUED = frozenset(
    {
        b"authorization",
        b"content-type",
        b"content-digest",
        b"idempotency-key",
        b"signature",
        b"signature-input",
        b"host",
    }
)


def _duplicated_single_header(raw: list[tuple[bytes, bytes]]) -> str | None:
    seen: set[bytes] = set()
    for name, _ in raw:
        name = name.lower()
        if name in SINGLE_VALUED:
            if name in seen:
                return f"The {name.decode()} header appears more than once."
            seen.add(name)
    return None


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, service: str, max_body_bytes: int) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # A sampled-out request (FastAPI's telemetry stood aside): its non-recording span.
        trace_token = attach_sampled_out(scope)
        try:
            await self._serve(scope, receive, send)
        finally:
            detach(trace_token)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        request_id = accept_or_new_request_id(headers.get(b"x-request-id", b"").decode("latin-1"))
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        if duplicated := _duplicated_single_header(scope["headers"]):
            await self._refuse(send, request_id, 400, "duplicate-header", duplicated)
            self._record(scope, 400, started)
            request_id_var.reset(token)
            return

        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            status = 413
            await self._too_large(send, request_id)
            self._record(scope, status, started)
            request_id_var.reset(token)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            status = 413
            if not response_started:
                await self._too_large(send, request_id)
        finally:
            self._record(scope, status, started)
            request_id_var.reset(token)

    async def _too_large(self, send: Send, request_id: str) -> None:
        detail = f"Request bodies are limited to {self.max_body_bytes} bytes."
        await self._refuse(send, request_id, 413, "body-too-large", detail)

    async def _refuse(
        self, send: Send, request_id: str, status: int, slug: str, detail: str
    ) -> None:
        body = json.dumps(problem_body(status, slug, detail)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _record(self, scope: Scope, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        method = scope["method"]
        REQUESTS.labels(self.service, method, route, str(status)).inc()
        LATENCY.labels(self.service, method, route).observe(elapsed, exemplar=exemplar())
        if route not in ("/health", "/metrics"):
            access_log.info(
                "request",
                extra={
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
