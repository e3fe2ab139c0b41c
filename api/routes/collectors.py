"""Collectors' health per machine: collectors report in (``POST``, collector role, own machines only); the
dashboard and people read it (``GET``); ``/metrics`` shows it too."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException
from pydantic import Field

from api.deps import CollectorOrAdmin, Reader, ServicesDep
from api.errors import ERROR_RESPONSES
from api.params import Request, Response
from api.routes.fields import Code, Text
from mes_bridge.health_reports import MachineHealth as Health

router = APIRouter(prefix="/collectors", tags=["collectors"], responses=ERROR_RESPONSES)


class MachineReport(Request):
    machine: Code
    connected: bool
    last_value_age_s: Annotated[float | None, Field(ge=-1, le=1e9)] = None  # float-ok: seconds
    spool_depth: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    events_per_s: Annotated[float, Field(ge=0, le=1e9)] = 0.0  # float-ok: a rate
    error: Text | None = None


class HealthReport(Request):
    machines: Annotated[list[MachineReport], Field(max_length=1000)]


class MachineRow(Response):
    machine: str
    connected: bool
    last_value_age_s: float | None  # float-ok: seconds
    spool_depth: int
    events_per_s: float  # float-ok: a rate
    error: str | None
    reported_by: str
    reported_at: str
    report_age_s: float  # float-ok: seconds


class MachinesHealth(Response):
    machines: list[MachineRow]


class Accepted(Response):
    recorded: int


@router.get("/health", response_model=MachinesHealth)
def health(services: ServicesDep, _who: Reader) -> dict[str, Any]:
    """Each machine's latest reported health: connection, last value age, spool depth, events/s, error."""
    return {"machines": services.machine_health()}


@router.post("/health", response_model=Accepted)
def report(body: HealthReport, services: ServicesDep, who: CollectorOrAdmin) -> dict[str, Any]:
    """A collector reports its machines' health (a collector token only for its own machines)."""
    foreign = sorted({m.machine for m in body.machines if not who.may_act_for(m.machine)})
    if foreign:
        raise HTTPException(403, f"this collector token is for {', '.join(sorted(who.machines))}, not "
                                 f"{', '.join(foreign)}")
    services.record_health([Health(m.machine, m.connected, m.last_value_age_s, m.spool_depth, m.events_per_s,
                                   m.error) for m in body.machines], who.name)
    return {"recorded": len(body.machines)}
