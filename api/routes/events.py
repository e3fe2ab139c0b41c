"""``POST /events``: a list of operation events (SPEC's JSON), one outcome each, exactly as ``events apply`` gives;
``GET /events/problems``: the stored rejected and conflicting events with their reasons.

The body is read here, not by a model: one bad event, whatever it holds (a wrong type, a number of thousands of
digits, not an object at all), must not make the others fail; it is stored as rejected with its reason.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from api.deps import EventSender, Reader, ServicesDep
from api.errors import ERROR_RESPONSES
from api.params import Response
from mes_bridge.tokens import Role

router = APIRouter(prefix="/events", tags=["events"], responses=ERROR_RESPONSES)

MAX_EVENTS = 5000
MAX_INT_DIGITS = 4000  # Python refuses to read longer integers; they are kept as decimals and refused per event


class Outcome(Response):
    event_id: str | None
    status: Literal["applied", "duplicate", "conflict", "rejected"]
    reason: str | None = None


class Problem(Response):
    id: int
    event_id: str | None
    status: str
    reason: str
    recorded_at: datetime
    payload: str


class Problems(Response):
    rows: list[Problem]


_NUMBER = {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]}
_TEXT = {"anyOf": [{"type": "string"}, {"type": "null"}]}
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "OperationEvent",
    "description": "SPEC.md's operation event; quantities may be JSON numbers or decimal strings",
    "properties": {
        "event_id": {"type": "string"}, "work_order": _TEXT, "serial": _TEXT,
        "operation": {"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]},
        "good": _NUMBER, "scrap": _NUMBER, "rework": _NUMBER, "kwh": _NUMBER, "actual_minutes": _NUMBER,
        "operator": _TEXT, "machine": _TEXT, "work_center": _TEXT,
        "provenance": {"type": "string", "enum": ["sensor", "scan", "manual"]},
        "source_time": {"type": "string", "format": "date-time"},
    },
    "required": ["event_id", "provenance", "source_time"],
    "example": {"event_id": "LASER-1:parts:0:1041", "work_order": "WO-1", "operation": 10, "good": 10,
                "scrap": 0, "rework": 0, "kwh": "5.5", "machine": "LASER-1", "work_center": "WC-LASER",
                "provenance": "sensor", "source_time": "2026-11-22T08:00:00Z"},
}


def _int(text: str) -> int | Decimal:
    return int(text) if len(text) <= MAX_INT_DIGITS else Decimal(text)


def read_events(body: bytes) -> list[Any]:
    """The body as a list of raw events (each checked later, one by one); 422 if it is not a JSON list."""
    try:
        found = json.loads(body, parse_int=_int, parse_float=Decimal, parse_constant=str)
    except (ValueError, RecursionError) as exc:
        raise HTTPException(422, f"body: not JSON ({exc}); send a list of events") from None
    if not isinstance(found, list):
        raise HTTPException(422, f"body: expected a JSON list of events, got {type(found).__name__}")
    if len(found) > MAX_EVENTS:
        raise HTTPException(422, f"body: {len(found)} events in one request; send at most {MAX_EVENTS}")
    return found


@router.post(
    "", response_model=list[Outcome],
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"type": "array", "items": EVENT_SCHEMA, "maxItems": MAX_EVENTS}}}}},
)
async def post_events(request: Request, services: ServicesDep, principal: EventSender) -> JSONResponse:
    """Apply a list of events; one outcome per event, in order: applied, duplicate, conflict or rejected (with its
    reason). Re-sending is harmless. A collector token may only send events of its own machines."""
    events = read_events(await request.body())
    if principal.role is Role.COLLECTOR:
        for number, event in enumerate(events, 1):
            machine = event.get("machine") if isinstance(event, dict) else None
            if isinstance(event, dict) and not (isinstance(machine, str) and principal.may_act_for(machine)):
                raise HTTPException(403, f"event {number} ({str(event.get('event_id'))[:80]!r}) is for machine "
                                         f"{str(machine)[:80]!r}; this collector token may only send events of "
                                         f"{', '.join(sorted(principal.machines))}")
    outcomes = await services.apply_events_in_turn(events)
    request.app.state.metrics.outcomes(outcomes)
    return JSONResponse([o.to_json() for o in outcomes])


@router.get("/problems", response_model=Problems)
def problems(services: ServicesDep, _who: Reader,
             status: Literal["rejected", "conflict"] | None = None,
             limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> dict[str, Any]:
    """Stored rejected and conflicting events, newest first, with their reasons and payloads."""
    return {"rows": services.list_problems(status, limit)}
