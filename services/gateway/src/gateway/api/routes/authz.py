"""What Envoy's ext_authz (HTTP service, path_prefix "/authz") calls for every request.

Envoy sends the original method, ``/authz`` + the original path and query, the headers it is
configured to pass and the whole body. 200 lets the request through with the internal-signature
headers added; any other status is relayed to the client with its problem body.
"""

import logging
import time

from fastapi import APIRouter, Request, Response
from payplane_core.context import request_id_var
from payplane_core.problems import problem_response

from gateway.api.deps import GateDep
from gateway.decision import authorize
from gateway.denials import Denied
from gateway.metrics import DECISION_SECONDS, DECISIONS

PREFIX = "/authz"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

router = APIRouter(tags=["authz"])
log = logging.getLogger(__name__)


def original_target(request: Request) -> str:
    raw = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1").removeprefix(PREFIX) or "/"
    query = request.scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


@router.api_route(PREFIX + "/{path:path}", methods=ALL_METHODS, include_in_schema=False)
async def check(request: Request, gate: GateDep) -> Response:
    started = time.perf_counter()
    try:
        allowed = await authorize(
            gate,
            method=request.method,
            target=original_target(request),
            headers=request.headers,
            body=await request.body(),
            request_id=request_id_var.get(),
        )
    except Denied as denied:
        DECISIONS.labels("deny", denied.reason).inc()
        DECISION_SECONDS.labels("deny").observe(time.perf_counter() - started)
        log.info("denied", extra={"reason": denied.reason, "status": denied.status})
        return problem_response(denied.problem())
    DECISIONS.labels("allow", "ok").inc()
    DECISION_SECONDS.labels("allow").observe(time.perf_counter() - started)
    # x-request-id is added by the shared middleware (the same id, once).
    headers = {k: v for k, v in allowed.headers.items() if k != "x-request-id"}
    return Response(status_code=200, headers=headers)
