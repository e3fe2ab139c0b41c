"""``create_app``: the FastAPI application, built at start-up (``mes-bridge serve`` runs it as a uvicorn factory).

The app is stateless: everything it knows lives in the database, so any number of processes or hosts can serve one
PostgreSQL database. Open without a token: ``/health``, ``/metrics``, ``/docs``, ``/openapi.json`` and the pages'
shells (their data calls carry a token).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import swagger_ui_bundle
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from api import errors
from api.metrics import ApiMetrics, LatencyMiddleware, multiprocess_dir
from api.routes import (
    bom,
    collectors,
    events,
    journal,
    ledger,
    machines,
    pages,
    routing,
    scan,
    tokens,
    wip,
    work_orders,
)
from api.services import POOL_SIZE, ApiServices
from mes_bridge.bootstrap import Services
from mes_common.settings import Settings

ROUTERS = (events, scan, work_orders, machines, wip, ledger, bom, routing, journal, collectors, tokens, pages)


def create_app(services: Services | None = None, settings: Settings | None = None) -> FastAPI:
    """The app over ``services`` (default: built from ``settings``, default: the environment; then the app owns
    them and disposes of them at shutdown)."""
    owned = services is None
    the_services = ApiServices(services) if services is not None else ApiServices.from_settings(settings or Settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if owned:
            await run_in_threadpool(the_services.warm_up, POOL_SIZE)
        yield
        metrics.worker_exits()
        if owned:
            the_services.close()

    app = FastAPI(
        title="mes-bridge",
        summary="Shop-floor events to exact WIP quantities, costs and stock.",
        description="Send `Authorization: Bearer <token>` (`mes-bridge token create --role ROLE`). Roles: terminal "
                    "(bound to work centers), collector (bound to machines), planner, accountant, admin.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served below from the package's own copy of Swagger UI: no CDN on a plant network
        redoc_url=None,
    )
    app.state.services = the_services
    metrics = app.state.metrics = ApiMetrics(the_services.machine_health, multiprocess_dir())
    app.add_middleware(LatencyMiddleware, metrics=metrics)
    errors.install(app)

    @app.get("/health", tags=["health"], responses={503: {"model": errors.ErrorBody}})
    async def health() -> JSONResponse:
        """Liveness and the database: answers without a token (503 when the database does not answer)."""
        try:
            await run_in_threadpool(_ping, the_services)
        except Exception as exc:  # any failure to reach the database
            return JSONResponse({"detail": f"database unavailable: {type(exc).__name__}"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/metrics", tags=["health"], response_class=Response,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def prometheus() -> Response:
        """Prometheus metrics: request latency per route, events by outcome, collectors' reported health."""
        body = await run_in_threadpool(metrics.render)
        return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    app.mount("/docs-static", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        """The OpenAPI documentation (Swagger UI shipped with the package)."""
        return get_swagger_ui_html(openapi_url="/openapi.json", title="mes-bridge API",
                                   swagger_js_url="/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-static/swagger-ui.css",
                                   swagger_favicon_url="/docs-static/favicon-32x32.png")

    for module in ROUTERS:
        app.include_router(module.router, responses=errors.ERROR_RESPONSES)
    return app


def _ping(services: ApiServices) -> None:
    with services.read() as conn:
        conn.execute(text("SELECT 1"))
