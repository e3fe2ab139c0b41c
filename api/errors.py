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
from fastapi.responses import JSONResponse
from pydantic import BaseModel

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


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
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


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def unfit_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()]
        return JSONResponse({"detail": validation_message(errors), "errors": errors}, status_code=422)
