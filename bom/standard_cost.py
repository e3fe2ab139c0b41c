"""The standard cost roll-up fed from the database: released BOMs and routings, work-center rates, the ledger's
moving-average costs (the pure roll-up is ``bom.rollup.roll_up``). Works inside the caller's connection."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy.engine import Connection

from bom import repository as bom_repo
from bom.rollup import CostRollup, leaves, roll_up
from ledger.repository import average_costs
from routing import repository as routing_repo
from routing.model import RoutingVersion


def standard_cost(conn: Connection, item: str, as_of: date, qty: Decimal = Decimal(1), *,
                  boms_cache: bom_repo.BomCache | None = None,
                  routings_cache: routing_repo.RoutingCache | None = None) -> CostRollup:
    """Roll up ``item``'s standard cost per unit from the database (released BOMs and routings effective
    on ``as_of``, the work-center rates effective then, the ledger's moving-average costs); the caches, when given, are
    the unit of work's."""
    boms = bom_repo.released_index(conn, boms_cache)
    routings = routing_repo.released_routings(conn, routings_cache)

    def routing_of(code: str, day: date) -> RoutingVersion | None:
        for version in routings.get(code, ()):
            if version.effective_on(day):
                return version
        return None

    costs = average_costs(conn, sorted(leaves(boms, routing_of, item, as_of)))
    return roll_up(item, as_of, Decimal(qty), boms, routing_of, routing_repo.work_centers(conn, as_of=as_of),
                   costs.get)
