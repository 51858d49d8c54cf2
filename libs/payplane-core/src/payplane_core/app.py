"""The app factory every service uses, and the internal-signature dependency."""

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from payplane_core.internal_auth import InternalAuthError, InternalIdentity, verify
from payplane_core.logging import configure_logging
from payplane_core.middleware import RequestContextMiddleware
from payplane_core.problems import Problem, install_problem_handlers, problem_response
from payplane_core.settings import ServiceSettings

ReadinessCheck = Callable[[FastAPI], Awaitable[None]]


def request_target(request: Request) -> str:
    """The path with its query string, exactly as it arrived (what the signer signed)."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string", b"")
    return (raw + (b"?" + query if query else b"")).decode("latin-1")


async def internal_identity(request: Request) -> InternalIdentity:
    settings: ServiceSettings = request.app.state.settings
    try:
        return verify(
            settings.INTERNAL_SIGNING_SECRETS,
            request.headers,
            method=request.method,
            path=request_target(request),
            max_age_seconds=settings.INTERNAL_SIGNATURE_MAX_AGE_SECONDS,
        )
    except InternalAuthError as exc:
        raise Problem(
            401,
            "internal-auth",
            f"Direct access is not allowed: {exc.reason}.",
            title="Unauthorized",
        ) from None


Internal = Annotated[InternalIdentity, Depends(internal_identity)]


def create_service_app(
    *,
    settings: ServiceSettings,
    routers: Sequence[APIRouter],
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[Any]] | None = None,
    readiness: Sequence[tuple[str, ReadinessCheck]] = (),
) -> FastAPI:
    """Build a service: every router given here requires the internal signature."""
    configure_logging(settings.SERVICE_NAME, settings.LOG_LEVEL)
    app = FastAPI(title=f"payplane {settings.SERVICE_NAME}", lifespan=lifespan)
    app.state.settings = settings
    install_problem_handlers(app)
    app.add_middleware(
        RequestContextMiddleware,
        service=settings.SERVICE_NAME,
        max_body_bytes=settings.MAX_BODY_BYTES,
    )

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": settings.SERVICE_NAME}

    @app.get("/ready", include_in_schema=False)
    async def ready() -> JSONResponse:
        failed = {}
        for name, check in readiness:
            try:
                await check(app)
            except Exception as exc:  # noqa: BLE001 - any failure means not ready
                failed[name] = type(exc).__name__
        if failed:
            return problem_response(
                Problem(503, "not-ready", "Dependencies unreachable.", checks=failed)
            )
        return JSONResponse({"status": "ready", "checks": [name for name, _ in readiness]})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router, dependencies=[Depends(internal_identity)])
    return app
