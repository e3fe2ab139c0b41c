"""Stock ledger: on hand (exactly ``ledger onhand --json``), moves, and the manual moves a planner or store keeper
posts — receipts (and returns held in quarantine), issues, transfers, cycle counts, quarantine decisions. Every move
records the token's name as who, a reason, and an idempotency key (given, or a new one)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import Field

from api.auth import Principal
from api.deps import Planner, Reader, ServicesDep
from api.errors import ERROR_RESPONSES
from api.params import Request, Response, moment
from api.routes.fields import Code, Key, Lot, Quantity, Reason
from ledger.commands import DecideQuarantine, PostCount, PostIssue, PostReceipt, PostTransfer
from ledger.model import PostedMove
from mes_common.money import fmt, fmt_qty

router = APIRouter(prefix="/ledger", tags=["ledger"], responses=ERROR_RESPONSES)


class OnHandRow(Response):
    item: str
    location: str
    lot: str
    qty: str
    value: str


class OnHand(Response):
    rows: list[OnHandRow]


class Move(Response):
    id: int
    kind: str
    item: str
    qty: str
    from_location: str | None
    to_location: str | None
    lot: str
    value: str
    actor: str
    reason: str
    provenance: str
    effective_at: datetime
    recorded_at: datetime
    reference: str | None
    idempotency_key: str


class Moves(Response):
    rows: list[Move]


class _MoveBody(Request):
    item: Code
    lot: Lot = ""
    key: Key = None
    reason: Reason = ""
    effective_at: datetime | None = None


class Receipt(_MoveBody):
    qty: Quantity
    to_location: Code
    value: Annotated[Decimal | None, Field(ge=0, lt=Decimal(10) ** 12, decimal_places=2,
                                           description="total value in cents")] = None
    unit_cost: Annotated[Decimal | None, Field(ge=0, lt=Decimal(10) ** 9, decimal_places=6)] = None
    quarantine: bool = False
    serials: tuple[Code, ...] = ()


class Issue(_MoveBody):
    qty: Quantity
    from_location: Code
    serials: tuple[Code, ...] = ()


class Transfer(_MoveBody):
    qty: Quantity
    from_location: Code
    to_location: Code
    serials: tuple[Code, ...] = ()


class Count(_MoveBody):
    location: Code
    counted: Annotated[Decimal | None, Field(ge=0, lt=Decimal(10) ** 9, decimal_places=6)] = None
    delta: Annotated[Decimal | None, Field(gt=-Decimal(10) ** 9, lt=Decimal(10) ** 9, decimal_places=6)] = None


class QuarantineDecision(_MoveBody):
    qty: Quantity
    from_location: Code
    accept_to: Code | None = None
    reject_to: Code | None = None


def move_json(m: PostedMove) -> dict[str, Any]:
    return {"id": m.id, "kind": str(m.kind), "item": m.item, "qty": fmt_qty(m.qty), "from_location": m.from_location,
            "to_location": m.to_location, "lot": m.lot, "value": fmt(m.value), "actor": m.actor, "reason": m.reason,
            "provenance": str(m.provenance), "effective_at": m.effective_at, "recorded_at": m.recorded_at,
            "reference": m.reference, "idempotency_key": m.idempotency_key}


def _common(who: Principal, body: _MoveBody, reason: str) -> dict[str, Any]:
    """What every move command carries: item, lot, who (the token's name), why, when, its idempotency key."""
    if body.effective_at is not None and body.effective_at.tzinfo is None:
        raise HTTPException(422, f"effective_at {body.effective_at.isoformat()} has no timezone (add Z or +hh:mm)")
    common: dict[str, Any] = {"item": body.item, "lot": body.lot, "actor": who.name[:64],
                              "reason": body.reason or reason, "effective_at": body.effective_at}
    return {**common, "key": body.key} if body.key else common


@router.get("/onhand", response_model=OnHand)
def onhand(services: ServicesDep, _who: Reader, item: str | None = None, location: str | None = None,
           as_of: str | None = None) -> dict[str, Any]:
    """Stock per item x location x lot, now or as of a moment (a date: its end, UTC; a time without a zone: UTC):
    exactly ``mes-bridge ledger onhand --json``."""
    return services.onhand(item, location, moment(as_of, "as_of", end_of_day=True, naive_is_utc=True))


@router.get("/moves", response_model=Moves)
def moves(services: ServicesDep, _who: Reader, item: str | None = None, reference: str | None = None,
          limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> dict[str, Any]:
    """The latest moves (who, when, why), oldest first; ``reference``: a work order or an event."""
    return {"rows": [move_json(m) for m in services.moves(item, reference, limit)]}


@router.post("/receipts", response_model=Move, status_code=201)
def receive(body: Receipt, services: ServicesDep, who: Planner) -> dict[str, Any]:
    """Receive stock at a total ``value`` (cents) or a ``unit_cost``; ``quarantine``: a return held until inspected
    (no value needed)."""
    return move_json(services.post_move(PostReceipt(
        **_common(who, body, "receipt"), qty=body.qty, to_location=body.to_location, value=body.value,
        unit_cost=body.unit_cost, quarantine=body.quarantine, serials=tuple(body.serials))))


@router.post("/issues", response_model=Move, status_code=201)
def issue(body: Issue, services: ServicesDep, who: Planner) -> dict[str, Any]:
    """Issue stock out of a location at its moving-average cost."""
    return move_json(services.post_move(PostIssue(
        **_common(who, body, "issue"), qty=body.qty, from_location=body.from_location, serials=tuple(body.serials))))


@router.post("/transfers", response_model=Move, status_code=201)
def transfer(body: Transfer, services: ServicesDep, who: Planner) -> dict[str, Any]:
    """Move stock between locations at its moving-average cost."""
    return move_json(services.post_move(PostTransfer(
        **_common(who, body, "transfer"), qty=body.qty, from_location=body.from_location,
        to_location=body.to_location, serials=tuple(body.serials))))


@router.post("/counts", response_model=Move | None, status_code=201)
def count(body: Count, services: ServicesDep, who: Planner) -> dict[str, Any] | None:
    """Cycle count: the quantity ``counted`` (the difference is read under the balance's lock) or the ``delta``;
    a ``reason`` is required. ``null`` when the stock is as counted."""
    if not body.reason:
        raise HTTPException(422, "reason: a count adjustment needs a reason")
    move = services.post_count(PostCount(**_common(who, body, body.reason), location=body.location,
                                         counted=body.counted, delta=body.delta))
    return None if move is None else move_json(move)


@router.post("/quarantine-decisions", response_model=Move, status_code=201)
def decide(body: QuarantineDecision, services: ServicesDep, who: Planner) -> dict[str, Any]:
    """Release quarantined stock: ``accept_to`` a usable location, or ``reject_to`` a scrap location."""
    return move_json(services.post_move(DecideQuarantine(
        **_common(who, body, "inspected"), qty=body.qty, from_location=body.from_location,
        accept_to=body.accept_to, reject_to=body.reject_to)))
