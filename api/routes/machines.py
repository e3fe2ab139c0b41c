"""The work order a machine works on: scanned at its terminal (``POST``, as ``wo scan``) and read back (``GET``) by
collectors forwarding over HTTP, which follow scans just as in-process ones do."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from api.auth import Principal
from api.deps import MachineScanner, MachineWatcher, ServicesDep
from api.errors import ERROR_RESPONSES
from api.params import Request, Response
from api.routes.fields import Code
from api.services import ApiServices
from mes_bridge.tokens import Role

router = APIRouter(prefix="/machines", tags=["machines"], responses=ERROR_RESPONSES)

# Machines per ``GET /machines/work-orders`` (a collector asks for its machines in chunks of this size).
MAX_MACHINES_PER_REQUEST = 500


class ScanAtMachine(Request):
    work_order: Code
    operator: Code | None = None


class Scanned(Response):
    machine: str
    work_order: str
    operation: int
    work_center: str
    operator: str | None
    scanned_at: datetime


class Current(Response):
    machine: str
    work_order: str | None


def _check(services: ApiServices, principal: Principal, machine: str) -> None:
    """A collector only for its machines; a terminal only for machines of its work centers."""
    if principal.role is Role.COLLECTOR:
        if not principal.may_act_for(machine):
            raise HTTPException(403, f"this collector token is for {', '.join(sorted(principal.machines))}, "
                                     f"not machine {machine}")
        return
    if principal.role is Role.TERMINAL:
        center = services.machine_work_center(machine)
        if center is None:
            raise HTTPException(404, f"machine {machine!r} belongs to no work center")
        if not principal.may_act_at(center):
            raise HTTPException(403, f"machine {machine} is at {center}; this terminal is for "
                                     f"{', '.join(sorted(principal.work_centers))}")


@router.post("/{machine}/work-order", response_model=Scanned)
def scan(machine: str, body: ScanAtMachine, services: ServicesDep, principal: MachineScanner) -> dict[str, Any]:
    """The order ``machine`` works on from now (as ``mes-bridge wo scan``): its next counted parts go to it."""
    _check(services, principal, machine)
    done = services.record_scan(machine, body.work_order, body.operator)
    return {"machine": done.machine, "work_order": done.work_order, "operation": done.operation,
            "work_center": done.work_center, "operator": done.operator, "scanned_at": done.scanned_at}


@router.get("/{machine}/work-order", response_model=Current)
def current(machine: str, services: ServicesDep, principal: MachineWatcher) -> dict[str, Any]:
    """The order last scanned at ``machine`` (``work_order`` null: never scanned)."""
    _check(services, principal, machine)
    return {"machine": machine, "work_order": services.current_scans([machine]).get(machine)}


@router.get("/work-orders", response_model=list[Current])
def current_many(
    services: ServicesDep, principal: MachineWatcher,
    machine: Annotated[list[Code], Query(min_length=1, max_length=MAX_MACHINES_PER_REQUEST,
                                         description="a machine id; repeat for each machine")],
) -> list[dict[str, Any]]:
    """The order last scanned at each of the ``machine`` ids, in one request (a collector forwarding over HTTP asks
    for all its machines every second); each machine is checked as for ``GET /machines/{machine}/work-order``."""
    wanted = list(dict.fromkeys(machine))
    for one in wanted:
        _check(services, principal, one)
    found = services.current_scans(wanted)
    return [{"machine": one, "work_order": found.get(one)} for one in wanted]
