"""Work orders: release (freezing the BOM and routing versions effective that day), close (residue to variances),
and the per-operation view, exactly ``wo show --json``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException
from pydantic import Field

from api.deps import OrderViewer, Planner, Reader, ServicesDep
from api.errors import ERROR_RESPONSES
from api.params import Request, Response
from api.routes.fields import Code
from mes_bridge.cli.wip_cmds import describe_close

router = APIRouter(prefix="/work-orders", tags=["work orders"], responses=ERROR_RESPONSES)



class Release(Request):
    id: Code
    item: Code
    qty: Annotated[Decimal, Field(gt=0, lt=Decimal(10) ** 9, decimal_places=6)]
    date: Annotated[dt.date | None, Field(description="release date (effectivity); default today")] = None
    due_date: dt.date | None = None
    receiving_location: Code | None = None
    serials: Annotated[tuple[Code, ...], Field(max_length=100_000)] = ()


class Pool(Response):
    qty: str
    value: str


class EnergyView(Response):
    kwh: str
    metered_kwh: str
    standard_kwh: str
    by_machine: dict[str, str]


class OperationView(Response):
    operation: int
    work_center: str
    received: str
    completed_good: str
    scrapped: str
    reworked: str
    written_off: str
    waiting: str
    first_pass: Pool
    rework: Pool
    energy: EnergyView


class MaterialIssued(Response):
    """Components issued to the order, per item and lot ("": stock held without a lot), as ``wo show`` lists them."""

    item: str
    lot: str
    qty: str
    value: str


class OrderView(Response):
    id: str
    item: str
    qty: str
    status: str
    bom_revision: str | None
    routing_revision: str
    released_on: str
    receiving_location: str
    produced: str
    operations: list[OperationView]
    energy: EnergyView
    materials: list[MaterialIssued]


class Closed(Response):
    work_order: str
    lines: list[str]
    order: OrderView


def _view(services: Any, order_id: str) -> dict[str, Any]:
    view: dict[str, Any] | None = services.order_view(order_id)
    if view is None:
        raise HTTPException(404, f"unknown work order {order_id}")
    return view


@router.post("", response_model=OrderView, status_code=201)
def release(body: Release, services: ServicesDep, _who: Planner) -> dict[str, Any]:
    """Release a work order: the BOM and routing versions effective on ``date`` are frozen into it."""
    services.release_order(body.id, body.item, body.qty, on=body.date, due_date=body.due_date,
                           receiving_location=body.receiving_location, serials=tuple(body.serials))
    return _view(services, body.id)


@router.post("/{order_id}/close", response_model=Closed)
def close(order_id: str, services: ServicesDep, _who: Reader) -> dict[str, Any]:
    """Close a work order: any residue goes to variance accounts by cause."""
    result = services.close_order(order_id)
    return {"work_order": order_id, "lines": describe_close(result), "order": _view(services, order_id)}


@router.get("/{order_id}", response_model=OrderView)
def show(order_id: str, services: ServicesDep, _who: OrderViewer) -> dict[str, Any]:
    """Per-operation quantities and pool values: exactly ``mes-bridge wo show --json``."""
    return _view(services, order_id)
