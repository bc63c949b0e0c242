"""The FastAPI application: finance reports and CDRs, OCPI 2.2.1 interfaces, admin, health.

``create_app(settings)`` builds everything from one :class:`Settings`; nothing is read from
the environment here, so tests build apps against their own databases.
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from api.errors import install_error_handlers
from api.middleware import RequestIdMiddleware
from chargeledger.settings import Settings
from storage.db import make_engine, make_sessionmaker

log = logging.getLogger(__name__)

DESCRIPTION = """\
chargeledger's HTTP API.

* **Finance** (`/cdrs`, `/reports/...`): API key in `X-API-Key` (roles `read`, `admin`).
  Money is exact: JSON numbers with every digit, never floats. Errors are RFC 9457 problem details.
* **OCPI 2.2.1** (`/ocpi/...`): `Authorization: Token <Base64 token>`; responses in the OCPI
  envelope, errors with OCPI status codes.
* **Admin** (`/admin/...`): partners and API keys (role `admin`).
* `GET /health` and this document need no authentication.
"""


def _engine_kwargs(url: str) -> dict:
    if url.startswith("sqlite"):
        return {}
    # No pre-ping (one round trip per request); connections are recycled after 30 minutes.
    # At most as many connections as the 40 worker threads that can use them.
    return {"pool_size": 10, "max_overflow": 30, "pool_recycle": 1800}


def create_app(settings: Settings) -> FastAPI:
    engine = make_engine(settings.database_url, **_engine_kwargs(settings.database_url))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        pusher_stop = threading.Event()
        thread = None
        if settings.cdr_push_enabled:
            from api.pusher import run_pusher_thread

            thread = run_pusher_thread(app.state.sessionmaker, settings, pusher_stop)
        try:
            yield
        finally:
            pusher_stop.set()
            if thread is not None:
                thread.join(timeout=10)
            # The engine and the HTTP client stay usable: an app may be started again (tests).
            engine.dispose()

    app = FastAPI(
        title="chargeledger API",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.read_sessionmaker = (
        make_sessionmaker(engine.execution_options(isolation_level="AUTOCOMMIT"))
        if engine.dialect.name == "postgresql" else app.state.sessionmaker
    )
    app.state.http_client = httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0))
    app.state.report_cache = None
    from api.security import AuthCache

    app.state.auth_cache = AuthCache(settings.auth_cache_ttl_s)
    from api.ocpi.cdrs import CountCache

    app.state.cdr_count_cache = CountCache()

    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)

    from api import admin, health
    from api.ocpi import credentials, versions

    app.include_router(health.router)
    app.include_router(versions.router)
    app.include_router(credentials.router)
    app.include_router(admin.router)
    _include_optional(app)
    _add_ocpi_schemas(app)
    return app


def _add_ocpi_schemas(app: FastAPI) -> None:
    """Publish the OCPI Cdr model in components/schemas (the CDR receiver's request body)."""
    from fastapi.openapi.utils import get_openapi
    from schemas.ocpi import Cdr

    def openapi():
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        cdr_schema = Cdr.model_json_schema(ref_template="#/components/schemas/{model}", mode="validation")
        defs = cdr_schema.pop("$defs", {})
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in defs.items():
            components.setdefault(name, definition)
        components["Cdr"] = cdr_schema
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


def _include_optional(app: FastAPI) -> None:
    """Routers that read other concerns' tables (CDRs, tariffs, settlement)."""
    from api import finance
    from api.ocpi import cdrs, tariffs

    app.include_router(finance.router)
    app.include_router(cdrs.sender_router)
    app.include_router(cdrs.receiver_router)
    app.include_router(tariffs.router)
    from api import settlement

    app.include_router(settlement.router)
    from api import pipeline

    app.include_router(pipeline.router)


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory api.app:app_from_env`` (settings from CHARGELEDGER_*)."""
    return create_app(Settings())
