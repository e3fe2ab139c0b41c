"""Errors as JSON ``{"detail": "<message a person can act on>"}``: domain refusals, unfit requests.

A refused command keeps its domain message (which order, which operation, how many were waiting, which field);
the status says what kind of refusal it is: 404 something named does not exist, 409 the state does not allow it
(closed order, not enough waiting or in stock, a different earlier request with the same key), 422 the request
itself is wrong. A request that does not fit its model (unknown fields included) is 422 naming each field.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from ledger.model import (
    AlreadyReversed,
    InsufficientStock,
    MoveConflict,
    SerialUnavailable,
    UnknownItem,
    UnknownLocation,
    UnknownMove,
)
from mes_bridge.tokens import TokenRefused
from mes_common.errors import DomainError
from wip_costing.model import MoreThanWaiting, OrderClosed, UnknownOrder
from wip_costing.scans import ScanRefused
from wip_costing.terminal import NothingToReport

NOT_FOUND = (UnknownOrder, UnknownItem, UnknownLocation, UnknownMove)
CONFLICT = (InsufficientStock, MoveConflict, AlreadyReversed, SerialUnavailable, OrderClosed, MoreThanWaiting,
            ScanRefused, NothingToReport, TokenRefused)


class ErrorBody(BaseModel):
    detail: str


class ValidationErrorBody(BaseModel):
    detail: str
    errors: list[dict[str, Any]] = []


class RejectedReport(ValidationErrorBody):
    """A refused report: the body did not fit (``errors``), or the event was rejected (``event_id``, ``status``)."""

    event_id: str | None = None
    status: str | None = None
    reason: str | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "the body could not be read (not JSON, not UTF-8)"},
    401: {"model": ErrorBody, "description": "no token, or an unknown or revoked one"},
    403: {"model": ErrorBody, "description": "the token's role or binding does not allow this"},
    404: {"model": ErrorBody, "description": "something named does not exist"},
    409: {"model": ErrorBody, "description": "refused in the current state (the message says why)"},
    422: {"model": ValidationErrorBody, "description": "the request does not fit (the message names the field)"},
}


def status_of(exc: DomainError) -> int:
    if isinstance(exc, NOT_FOUND):
        return 404
    if isinstance(exc, CONFLICT):
        return 409
    return 422


def _where(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def validation_message(errors: list[Any]) -> str:
    parts = []
    for error in errors[:10]:
        where = _where(error.get("loc", ()))
        msg = error.get("msg", "invalid")
        if error.get("type") == "extra_forbidden":
            msg = "is not a field you can send (computed or unknown)"
        parts.append(f"{where}: {msg}")
    more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
    return "; ".join(parts) + more


def openapi_with_our_errors(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document, with FastAPI's default 422 schema replaced by the one this app answers with."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                             description=app.description, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        if "HTTPValidationError" in components:
            components["HTTPValidationError"] = ValidationErrorBody.model_json_schema()
            components.pop("ValidationError", None)
        app.openapi_schema = schema
    return app.openapi_schema


class RefuseNul:
    """A path or query string holding a NUL character is refused (422) before any route: no database stores it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b"")):
            response = JSONResponse({"detail": "the path or query string holds a NUL character"}, status_code=422)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install(app: FastAPI) -> None:
    app.add_middleware(RefuseNul)
    app.openapi = lambda: openapi_with_our_errors(app)  # type: ignore[method-assign]

    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def unfit_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()]
        return JSONResponse({"detail": validation_message(errors), "errors": errors}, status_code=422)
