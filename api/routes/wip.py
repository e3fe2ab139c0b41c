"""WIP value from the cost journal, as of a moment, grouped: exactly ``mes-bridge wip value --json``."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from api.deps import Reader, ServicesDep
from api.errors import ERROR_RESPONSES
from api.params import Response, moment

router = APIRouter(prefix="/wip", tags=["wip"], responses=ERROR_RESPONSES)


class WipReport(Response):
    as_of: str | None
    by: str
    total: str
    rows: list[dict[str, Any]]


@router.get("", response_model=WipReport)
def wip_value(services: ServicesDep, _who: Reader, as_of: str | None = None,
              by: Literal["order", "operation", "work-center", "element", "provenance"] = "order") -> dict[str, Any]:
    """``as_of``: an ISO 8601 timestamp with a timezone, or a date (its end, UTC); default: everything posted.
    Rows: the grouping columns (``work_order``, ``operation``, ``work_center``, ``element``, ``provenance``),
    ``value`` and ``share``."""
    return services.wip_value(moment(as_of, "as_of", end_of_day=True), by)
