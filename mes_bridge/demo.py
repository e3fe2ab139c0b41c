"""The demo: SPEC.md's example plant on the configured database (embedded SQLite by default).

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

from sqlalchemy.engine import Engine

from bom import importer as bom_importer
from bom.rollup import standard_cost
from ledger import importer as ledger_importer
from ledger.queries import onhand
from mes_common.money import fmt, fmt_qty, to_cents
from routing import importer as routing_importer
from wip_costing import reports
from wip_costing.service import apply_events, release_order

EXAMPLE_PLANT = Path(__file__).resolve().parent / "example_plant"
SECOND_PRODUCT = EXAMPLE_PLANT / "hinge"
OPENING_DATE = datetime(2026, 1, 1, tzinfo=UTC)
RELEASE_DATE = date(2026, 11, 22)
ACTOR = "demo"

Echo = Callable[[str], None]


def load_plant(engine: Engine, echo: Echo, folder: Path = EXAMPLE_PLANT) -> None:
    """Every master-data file present in ``folder`` (idempotent), in dependency order, in one transaction: the
    example plant (items, locations, opening stock, work centers, routing and BOM of FG-BRACKET), or
    ``SECOND_PRODUCT`` (FG-HINGE: a phantom sub-assembly, a rework loop)."""
    with engine.begin() as conn:
        ledger_results = []
        if (folder / "items.csv").exists():
            ledger_results.append(ledger_importer.import_items(conn, folder / "items.csv", actor=ACTOR))
        if (folder / "locations.csv").exists():
            ledger_results.append(ledger_importer.import_locations(conn, folder / "locations.csv", actor=ACTOR))
        if (folder / "balances.csv").exists():
            ledger_results.append(ledger_importer.import_balances(conn, folder / "balances.csv", actor=ACTOR,
                                                                  effective_at=OPENING_DATE))
        centers = (routing_importer.import_work_centers(conn, folder / "work_centers.csv")
                   if (folder / "work_centers.csv").exists() else None)
        routings = routing_importer.import_operations(conn, folder / "operations.csv")
        bom = bom_importer.import_bom(conn, folder / "bom.csv")
    for result in ledger_results:
        echo(f"  {result}")
    if centers is not None:
        echo(f"  work centers: {', '.join(centers.written + centers.unchanged)}")
    echo(f"  routings: released {', '.join(routings.written) or 'nothing new'}; "
         f"already present: {', '.join(routings.unchanged) or '-'}")
    echo(f"  BOM: released {', '.join(bom.released) or 'nothing new'}; "
         f"already present: {', '.join(bom.unchanged) or '-'}")


def show_stock(engine: Engine, echo: Echo) -> None:
    with engine.connect() as conn:
        rows = onhand(conn)
    echo(f"  {'item':<12}{'location':<10}{'lot':<6}{'qty':>8}{'value':>12}")
    for row in rows:
        echo(f"  {row.item:<12}{row.location:<10}{row.lot:<6}{fmt_qty(row.qty):>8}{fmt(row.value):>12}")


def show_rollup(engine: Engine, echo: Echo, item: str = "FG-BRACKET") -> None:
    with engine.connect() as conn:
        cost = standard_cost(conn, item, RELEASE_DATE)
    elements = ("material", "labor", "machine", "energy")
    parts = ", ".join(f"{name} {fmt(to_cents(getattr(cost, name)))}" for name in elements)
    echo(f"  standard cost of {item}: {fmt(to_cents(cost.total))} per unit ({parts})")


def _fg(engine: Engine, item: str) -> str:
    with engine.connect() as conn:
        rows = [r for r in onhand(conn, item) if r.qty]
    if not rows:
        return f"{item} 0"
    qty = sum((r.qty for r in rows), Decimal(0))
    value = sum((r.value for r in rows), Decimal(0))
    return f"{item} {fmt_qty(qty)} worth {fmt(value)}"


def figures(engine: Engine, item: str = "FG-BRACKET") -> str:
    """One line: WIP value, scrap loss and finished stock now."""
    with engine.connect() as conn:
        wip = reports.wip_value(conn).total
        scrap = reports.scrap_loss(conn)
    return f"WIP {fmt(wip)} | scrap loss {fmt(scrap)} | {_fg(engine, item)}"


def worked_example(engine: Engine, echo: Echo, folder: Path = EXAMPLE_PLANT) -> None:
    """Release WO-1 and apply the example's events one by one, showing the figures after each."""
    with engine.connect() as conn:
        known = reports.order_view(conn, "WO-1") is not None
    if known:
        echo("  WO-1 already released (a previous run); its events are re-sent and must come back as duplicates")
    else:
        release_order(engine, "WO-1", "FG-BRACKET", Decimal(10), on=RELEASE_DATE)
        echo("  released WO-1: 10 FG-BRACKET, BOM and routing frozen as effective on 2026-11-22")
    for line in (folder / "events.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        event = json.loads(line)
        (outcome,) = apply_events(engine, [event])
        qty = f"good {event['good']} scrap {event['scrap']} rework {event['rework']}"
        echo(f"  op {event['operation']} {qty} ({event['provenance']}) -> {outcome.status.value}"
             + (f": {outcome.reason}" if outcome.reason else ""))
        echo(f"      {figures(engine)}")


TOKEN_FILE = "demo-admin-token"


def admin_token(engine: Engine, data_dir: Path) -> str:
    """The demo's admin token: the one a previous run kept in ``data_dir`` while it still authenticates, else a new
    one (created like ``mes-bridge token create --role admin``; only its hash is in the database)."""
    from mes_bridge import tokens

    kept = data_dir / TOKEN_FILE
    if kept.exists():
        secret = kept.read_text(encoding="utf-8").strip()
        with engine.connect() as conn:
            if tokens.find_token(conn, secret) is not None:
                return secret
    with engine.begin() as conn:
        secret, _record = tokens.create_token(conn, "admin", name="demo admin")
    data_dir.mkdir(parents=True, exist_ok=True)
    kept.touch(mode=0o600)
    kept.write_text(secret + "\n", encoding="utf-8")
    return secret
