"""Routings (operations in flow order, as of a date or by revision) and work centers, as the CLI's ``--json``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from api.deps import Reader, ServicesDep
from api.errors import ERROR_RESPONSES
from api.params import day

router = APIRouter(tags=["routing"], responses=ERROR_RESPONSES)


@router.get("/routings/{item}")
def routing(item: str, services: ServicesDep, _who: Reader, as_of: str | None = None,
            revision: str | None = None) -> dict[str, Any]:
    """The routing of ``item`` effective on a date (default today), or a given revision."""
    when = day(as_of, "as_of")
    version = services.routing(item, when, revision)
    if version is None:
        what = f"revision {revision}" if revision else f"released routing effective on {when.isoformat()}"
        raise HTTPException(404, f"no {what} of {item}")
    return version.to_json()


@router.get("/work-centers")
def work_centers(services: ServicesDep, _who: Reader) -> dict[str, Any]:
    """Every work center with its rates, cost center, machines and terminals."""
    return {"rows": [
        {"code": wc.code, "name": wc.name, "labor_rate": str(wc.labor_rate), "machine_rate": str(wc.machine_rate),
         "energy_tariff": str(wc.energy_tariff), "cost_center": wc.cost_center, "machines": list(wc.machines),
         "terminals": list(wc.terminals), "supply_location": wc.supply_location}
        for wc in services.work_centers().values()
    ]}
