"""The scan terminal: identify a work order or serial by barcode, report good / scrap / rework at this terminal's
work center. A report is an operation event (provenance scan) through the one event path."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import Field

from api.deps import ServicesDep, Terminal
from api.errors import ERROR_RESPONSES, RejectedReport
from api.params import Request as RequestModel
from api.params import Response
from api.routes.fields import Code
from mes_bridge.tokens import Role
from mes_common.money import fmt_qty
from wip_costing.events import Status

router = APIRouter(prefix="/scan", tags=["scan"], responses=ERROR_RESPONSES)

Quantity = Annotated[Decimal, Field(ge=0, lt=Decimal(10) ** 9, decimal_places=6)]


class ScanView(Response):
    work_order: str
    item: str
    qty: str
    bom_revision: str | None
    routing_revision: str
    operation: int
    work_center: str
    quality_standard: str
    waiting: str
    serial: str | None


class ScanReport(RequestModel):
    work_order: Code
    operation: Annotated[int, Field(ge=0, lt=10**9)]
    good: Quantity = Decimal(0)
    scrap: Quantity = Decimal(0)
    rework: Quantity = Decimal(0)
    actual_minutes: Annotated[Decimal, Field(gt=0, lt=Decimal(10) ** 9, decimal_places=6)] | None = None
    operator: Code | None = None
    serial: Code | None = None
    report_id: Annotated[str | None, Field(
        min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$",
        description="the terminal's id for this report; sent again with the same reported_at it is answered "
                    "duplicate, never counted twice")] = None
    reported_at: Annotated[datetime | None, Field(
        description="when the operator reported (ISO 8601 with a timezone; default: when received)")] = None


class ReportOutcome(Response):
    event_id: str
    status: str
    reason: str | None = None


@router.get("/{barcode}", response_model=ScanView)
def identify(barcode: str, services: ServicesDep, principal: Terminal) -> dict[str, Any]:
    """The order behind a work-order or serial barcode, and the operation waiting at this terminal's work center
    (404 unknown barcode; 409 nothing to report here, saying what waits where)."""
    centers = principal.work_centers if principal.role is Role.TERMINAL else None
    return services.scan_view(barcode, centers)


@router.post("/report", response_model=ReportOutcome,
             responses={422: {"model": RejectedReport, "description": "the body does not fit, or the report was "
                                                                      "rejected (reason, event_id, status)"},
                        409: {"model": RejectedReport, "description": "the report id was used with other content"}})
async def report(body: ScanReport, request: Request, services: ServicesDep, principal: Terminal) -> JSONResponse:
    """Report good / scrap / rework at an operation of this terminal's work center. Rejected: 422 with the reason
    (which order, which operation, how many were waiting); another work center's operation: 403."""
    if body.reported_at is not None and body.reported_at.tzinfo is None:
        raise HTTPException(422, f"reported_at {body.reported_at.isoformat()} has no timezone (add Z or +hh:mm)")
    centers = (services.cached_operation_centers(body.work_order)
               or await run_in_threadpool(services.operation_centers, body.work_order))
    if centers is None:
        raise HTTPException(404, f"work order {body.work_order!r} does not exist")
    if body.operation not in centers:
        raise HTTPException(404, f"work order {body.work_order} has no operation {body.operation} "
                                 f"(operations {', '.join(str(n) for n in centers)})")
    center = centers[body.operation]
    if not principal.may_act_at(center):
        raise HTTPException(403, f"operation {body.operation} of work order {body.work_order} is at {center}; "
                                 f"this terminal reports for {', '.join(sorted(principal.work_centers))}")
    event = {
        "event_id": f"terminal:{principal.token_id}:{body.report_id or uuid.uuid4().hex}",
        "work_order": body.work_order, "operation": body.operation, "good": fmt_qty(body.good),
        "scrap": fmt_qty(body.scrap), "rework": fmt_qty(body.rework),
        "actual_minutes": None if body.actual_minutes is None else fmt_qty(body.actual_minutes),
        "operator": body.operator, "serial": body.serial, "work_center": center, "provenance": "scan",
        "source_time": (body.reported_at or datetime.now(UTC)).isoformat(),
    }
    [outcome] = await services.apply_events_in_turn([event])
    request.app.state.metrics.outcomes([outcome])
    body_out = outcome.to_json()
    if outcome.status is Status.REJECTED:
        return JSONResponse({"detail": outcome.reason, **body_out}, status_code=422)
    if outcome.status is Status.CONFLICT:
        return JSONResponse({"detail": outcome.reason, **body_out}, status_code=409)
    return JSONResponse(body_out)
