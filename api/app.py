"""The FastAPI application: `create_app(settings)` builds it; `harmony api` serves it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi_offline import FastAPIOffline
from sqlalchemy.orm import Session, sessionmaker

from api.deps import ApiContext, parse_tokens
from api.errors import install_error_handlers
from api.jobs import BacktestJobs
from api.limits import MAX_REQUEST_BYTES, BodySizeLimit
from api.routers import backtests, dashboard, health, pools, readiness
from controller.clock import Clock, SystemClock
from controller.settings import Settings
from controller.state.db import create_engine_for, make_session_factory

DESCRIPTION = """\
What each autoscaled pool is doing, what it will need, what Harmony decided and why,
and what it saved; backtests on demand.

Authenticate with `Authorization: Bearer <token>`, a token of `HARMONY_API_TOKENS`.
Tokens written there as `admin:TOKEN` may also POST (start backtests, retrain).
Errors have one shape: `{"error": {"status", "code", "message", "field", "problems"}}`.
"""
DOCS_ASSETS = "/vendor/docs"


def create_app(
    settings: Settings,
    session_factory: sessionmaker[Session] | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """The API over the state store at `settings.database_url` (or `session_factory`)."""
    from importlib.metadata import PackageNotFoundError, version

    if session_factory is None:
        session_factory = make_session_factory(create_engine_for(settings.database_url))
    clock = clock or SystemClock()
    jobs = BacktestJobs(session_factory, settings, clock)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        jobs.shutdown()

    try:
        app_version = version("harmony-autoscaler")
    except PackageNotFoundError:
        app_version = "0+unknown"
    # /docs and /redoc load Swagger UI and ReDoc from files the fastapi-offline package
    # ships, not from a CDN, so they work in an air-gapped cluster; no validator badge
    # either (it would call validator.swagger.io).
    app = FastAPIOffline(
        title="Harmony",
        version=app_version,
        description=DESCRIPTION,
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.harmony = ApiContext(
        settings=settings,
        sessions=session_factory,
        clock=clock,
        tokens=parse_tokens(settings.api_tokens),
        backtests=jobs,
    )
    install_error_handlers(app)
    for module in (health, pools, readiness, backtests, dashboard):
        app.include_router(module.router)
    app.add_middleware(BodySizeLimit, max_bytes=MAX_REQUEST_BYTES)
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api_cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    return app


def app_from_environment() -> FastAPI:
    """The app over `get_settings()`: what each `harmony api --workers N` process builds."""
    from controller.settings import get_settings

    return create_app(get_settings())
