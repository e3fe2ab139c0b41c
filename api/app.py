"""``create_app``: the FastAPI application, built at start-up (``mes-bridge serve`` runs it as a uvicorn factory).

The app is stateless: everything it knows lives in the database, so any number of processes can serve one
PostgreSQL database.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.routes import pages
from api.services import ApiServices
from mes_common.settings import Settings


def create_app(services: ApiServices | None = None, settings: Settings | None = None) -> FastAPI:
    """The app over ``services`` (default: built from ``settings``, default: the environment)."""
    if services is None:
        services = ApiServices.from_settings(settings or Settings())
    app = FastAPI(
        title="mes-bridge",
        summary="Shop-floor events to exact WIP quantities, costs and stock.",
        version="0.1.0",
    )
    app.state.services = services

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness: answers without a token."""
        return {"status": "ok"}

    app.include_router(pages.router)
    return app
