"""RFC 9457 problem details: every error a client sees, and never a stack trace."""

import json
import logging
import math
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

from payplane_core import dberrors
from payplane_core.context import request_id_var
from payplane_core.crypto import SecretBoxError

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://payplane.dev/problems/"

log = logging.getLogger(__name__)


class ProblemDocument(BaseModel):
    """What every error answer looks like (RFC 9457), as documented in each OpenAPI schema."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    request_id: str | None = None


_PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": ProblemDocument.model_json_schema()}}
# Every router's error answers, for its OpenAPI schema (so fuzzers can hold us to it).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"description": "Refused: a problem document.", "content": _PROBLEM_CONTENT},
    "5XX": {"description": "Unavailable: a problem document.", "content": _PROBLEM_CONTENT},
}


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or {}
        self.extra = extra


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds (RFC 9110 has no fractions), rounded up, at least 1
    (0 would invite an immediate retry)."""
    return str(max(1, math.ceil(seconds)))


def problem_body(
    status: int, slug: str, detail: str, title: str | None = None, **extra: Any
) -> dict[str, Any]:
    body = {
        "type": PROBLEM_BASE + slug,
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "request_id": request_id_var.get(),
    }
    body.update(extra)
    return body


class ProblemResponse(JSONResponse):
    """ASCII-escaped JSON: a lone surrogate echoed from the request can never break rendering."""

    media_type = PROBLEM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode("ascii")


def problem_response(problem: Problem) -> JSONResponse:
    return ProblemResponse(
        problem_body(problem.status, problem.slug, problem.detail, problem.title, **problem.extra),
        status_code=problem.status,
        headers=problem.headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only where and why: echoing the rejected input could reflect secrets into logs or clients.
    return [
        {
            "loc": [str(p)[:64] for p in err.get("loc", ())],
            "msg": err.get("msg", ""),
            "type": err["type"],
        }
        for err in exc.errors()
    ]


async def _on_problem(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc)


async def _on_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    if any(e["type"] == "json_invalid" for e in errors):
        return problem_response(
            Problem(400, "malformed-json", "The request body is not valid JSON.")
        )
    return problem_response(
        Problem(
            422,
            "validation-error",
            "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors)[:1000],
            title="Request validation failed",
            errors=errors,
        )
    )


async def _on_http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return problem_response(Problem(exc.status_code, slug, detail, headers=exc.headers))


async def _on_unreadable_secret(_: Request, exc: Exception) -> JSONResponse:
    # An operator problem (keys lost or rotated away), not a bug: say so, reveal nothing.
    log.error("stored secret cannot be decrypted with the configured ENCRYPTION_KEYS")
    return problem_response(
        Problem(
            500,
            "secrets-unreadable",
            "Stored secrets cannot be decrypted with the configured encryption keys; "
            "the operator must restore the key they were made with.",
        )
    )


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    fault = dberrors.classify(exc)
    if fault == dberrors.Fault.CLIENT_DATA:
        return problem_response(
            Problem(422, "unstorable-value", "A value in the request cannot be stored.")
        )
    if fault == dberrors.Fault.CONFLICT:
        return problem_response(
            Problem(409, "conflict", "The request conflicts with data already stored.")
        )
    if fault == dberrors.Fault.INFRASTRUCTURE:
        log.warning("database unavailable", extra={"error": type(exc).__name__})
        return problem_response(
            Problem(
                503,
                "database-unavailable",
                "The database is unavailable right now; retry later.",
                headers={"Retry-After": "2"},
            )
        )
    return await _on_unexpected(request, exc)


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return problem_response(
        Problem(500, "internal-error", "An unexpected error occurred; it has been logged.")
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Problem, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(SecretBoxError, _on_unreadable_secret)
    for error in dberrors.DATABASE_ERRORS:
        app.add_exception_handler(error, _on_database_error)
    app.add_exception_handler(Exception, _on_unexpected)
