"""The app factory every service uses, and the internal-signature dependency."""

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

from payplane_core.context import first_values
from payplane_core.heap import freeze_startup_objects
from payplane_core.internal_auth import (
    IDENTITY_STATE,
    InternalAuthError,
    InternalIdentity,
    NonceCache,
    verify,
)
from payplane_core.logging import configure_logging
from payplane_core.middleware import RequestContextMiddleware
from payplane_core.problems import (
    PROBLEM_RESPONSES,
    Problem,
    install_problem_handlers,
    problem_response,
)
from payplane_core.settings import ServiceSettings
from payplane_core.telemetry import FASTAPI_TELEMETRY, setup_tracing

ReadinessCheck = Callable[[FastAPI], Awaitable[None]]


def request_target(request: Request) -> str:
    """The path with its query string, exactly as it arrived (what the signer signed)."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    query = request.scope.get("query_string", b"")
    return (raw + (b"?" + query if query else b"")).decode("latin-1")


async def internal_identity(request: Request) -> InternalIdentity:
    settings: ServiceSettings = request.app.state.settings
    try:
        identity = verify(
            request.app.state.internal_keys,
            first_values(request.scope["headers"]),
            method=request.method,
            path=request_target(request),
            body=await request.body(),
            audience=settings.SERVICE_NAME,
            max_age_seconds=settings.INTERNAL_SIGNATURE_MAX_AGE_SECONDS,
            nonces=request.app.state.internal_nonces,
        )
    except InternalAuthError as exc:
        raise Problem(
            401,
            "internal-auth",
            f"Direct access is not allowed: {exc.reason}.",
            title="Unauthorized",
        ) from None
    # Middleware outside the routes (the breaker's FailureReporter) trusts only this copy.
    setattr(request.state, IDENTITY_STATE, identity)
    return identity


def require_caller(*callers: str) -> Callable[[InternalIdentity], Awaitable[InternalIdentity]]:
    """A dependency letting only ``callers`` use a route (on top of the service's own list)."""

    async def dependency(identity: Annotated[InternalIdentity, Depends(internal_identity)]):
        if identity.caller not in callers:
            raise Problem(403, "caller-not-allowed", f"{identity.caller} may not call this route.")
        return identity

    return dependency


Internal = Annotated[InternalIdentity, Depends(internal_identity)]


def _settled(
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[Any]] | None,
) -> Callable[[FastAPI], AbstractAsyncContextManager[Any]]:
    """The service's lifespan, then the start-up heap frozen (``payplane_core.heap``)."""

    @asynccontextmanager
    async def settled(app: FastAPI):
        async with lifespan(app) if lifespan is not None else nullcontext() as state:
            freeze_startup_objects()
            yield state

    return settled


def create_service_app(
    *,
    settings: ServiceSettings,
    routers: Sequence[APIRouter],
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[Any]] | None = None,
    readiness: Sequence[tuple[str, ReadinessCheck]] = (),
) -> FastAPI:
    """Build a service: every router given here requires the internal signature."""
    configure_logging(settings.SERVICE_NAME, settings.LOG_LEVEL)
    setup_tracing(settings.SERVICE_NAME)
    app = FastAPI(
        title=f"payplane {settings.SERVICE_NAME}",
        lifespan=_settled(lifespan),
        telemetry=FASTAPI_TELEMETRY,
    )
    app.state.settings = settings
    app.state.internal_keys = settings.internal_keys()
    app.state.internal_nonces = NonceCache()
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
    async def metrics(request: Request) -> Response:
        # OpenMetrics when the scraper asks for it: the only format that carries exemplars.
        encode, media_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encode(REGISTRY), media_type=media_type)

    for router in routers:
        app.include_router(
            router, dependencies=[Depends(internal_identity)], responses=PROBLEM_RESPONSES
        )
    return app
