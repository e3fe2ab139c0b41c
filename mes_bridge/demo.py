"""The demo: SPEC.md's example plant on the configured database (embedded SQLite by default), through the same
command handlers as the CLI and the API (``mes_bridge.bootstrap.Services``).

Every step is idempotent so that a second run resumes instead of failing: master data and opening stock are
imported with idempotent imports (fixed dates, so a re-import is recognised as already present), work orders are
released only when absent, and events are re-applied as duplicates.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bom.standard_cost import standard_cost
from ledger.queries import onhand
from mes_bridge.bootstrap import Services
from mes_common.money import fmt, fmt_qty, to_cents
from wip_costing import reports
from wip_costing.commands import (
    ApplyEvents,
    ImportBalances,
    ImportBom,
    ImportItems,
    ImportLocations,
    ImportOperations,
    ImportWorkCenters,
    ReleaseOrder,
)

EXAMPLE_PLANT = Path(__file__).resolve().parent / "example_plant"
OPENING_DATE = datetime(2026, 1, 1, tzinfo=UTC)
RELEASE_DATE = date(2026, 11, 22)
ACTOR = "demo"

Echo = Callable[[str], None]


def load_plant(services: Services, echo: Echo, folder: Path = EXAMPLE_PLANT) -> None:
    """Items, locations, opening stock, work centers, routing and BOM of the example plant (idempotent)."""
    ledger_results = [
        services.handle(ImportItems(source=folder / "items.csv", actor=ACTOR)),
        services.handle(ImportLocations(source=folder / "locations.csv", actor=ACTOR)),
        services.handle(ImportBalances(source=folder / "balances.csv", actor=ACTOR, effective_at=OPENING_DATE)),
    ]
    centers = services.handle(ImportWorkCenters(source=folder / "work_centers.csv"))
    routings = services.handle(ImportOperations(source=folder / "operations.csv"))
    bom = services.handle(ImportBom(source=folder / "bom.csv"))
    for result in ledger_results:
        echo(f"  {result}")
    echo(f"  work centers: {', '.join(centers.written + centers.unchanged)}")
    echo(f"  routings: released {', '.join(routings.written) or 'nothing new'}; "
         f"already present: {', '.join(routings.unchanged) or '-'}")
    echo(f"  BOM: released {', '.join(bom.released) or 'nothing new'}; "
         f"already present: {', '.join(bom.unchanged) or '-'}")


def show_stock(services: Services, echo: Echo) -> None:
    with services.read() as conn:
        rows = onhand(conn)
    echo(f"  {'item':<12}{'location':<10}{'lot':<6}{'qty':>8}{'value':>12}")
    for row in rows:
        echo(f"  {row.item:<12}{row.location:<10}{row.lot:<6}{fmt_qty(row.qty):>8}{fmt(row.value):>12}")


def show_rollup(services: Services, echo: Echo, item: str = "FG-BRACKET") -> None:
    with services.read() as conn:
        cost = standard_cost(conn, item, RELEASE_DATE, boms_cache=services.caches.bom,
                             routings_cache=services.caches.routings)
    elements = ("material", "labor", "machine", "energy")
    parts = ", ".join(f"{name} {fmt(to_cents(getattr(cost, name)))}" for name in elements)
    echo(f"  standard cost of {item}: {fmt(to_cents(cost.total))} per unit ({parts})")


def _fg(conn: Any, item: str) -> str:
    rows = [r for r in onhand(conn, item) if r.qty]
    if not rows:
        return f"{item} 0"
    qty = sum((r.qty for r in rows), Decimal(0))
    value = sum((r.value for r in rows), Decimal(0))
    return f"{item} {fmt_qty(qty)} worth {fmt(value)}"


def figures(services: Services, item: str = "FG-BRACKET") -> str:
    """One line: WIP value, scrap loss and finished stock now."""
    with services.read() as conn:
        wip = reports.wip_value(conn).total
        scrap = reports.scrap_loss(conn)
        return f"WIP {fmt(wip)} | scrap loss {fmt(scrap)} | {_fg(conn, item)}"


def worked_example(services: Services, echo: Echo, folder: Path = EXAMPLE_PLANT) -> None:
    """Release WO-1 and apply the example's events one by one, showing the figures after each."""
    with services.read() as conn:
        known = reports.order_view(conn, "WO-1") is not None
    if known:
        echo("  WO-1 already released (a previous run); its events are re-sent and must come back as duplicates")
    else:
        services.handle(ReleaseOrder("WO-1", "FG-BRACKET", Decimal(10), on=RELEASE_DATE))
        echo("  released WO-1: 10 FG-BRACKET, BOM and routing frozen as effective on 2026-11-22")
    for line in (folder / "events.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        event = json.loads(line)
        (outcome,) = services.handle(ApplyEvents([event]))
        qty = f"good {event['good']} scrap {event['scrap']} rework {event['rework']}"
        echo(f"  op {event['operation']} {qty} ({event['provenance']}) -> {outcome.status.value}"
             + (f": {outcome.reason}" if outcome.reason else ""))
        echo(f"      {figures(services)}")
