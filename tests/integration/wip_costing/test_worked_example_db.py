"""SPEC's worked example through the database, on SQLite and PostgreSQL, event by event."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy.engine import Engine

from ledger import repository as ledger_repo
from ledger.model import BalanceKey
from wip_costing import reports
from wip_costing.events import EventOutcome, Status
from wip_costing.journal import Account
from wip_costing.service import apply_events, close_order, release_order

from .plant import load_plant

D = Decimal


def _events(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines() if line.strip()]


def _balance(engine: Engine, item: str, location: str) -> tuple[Decimal, Decimal]:
    with engine.connect() as conn:
        b = ledger_repo.lock_balances(conn, [BalanceKey(item, location)])[BalanceKey(item, location)]
        conn.rollback()
    return b.qty, b.value


def _pool(engine: Engine, op: int) -> tuple[str, str]:
    with engine.connect() as conn:
        view = reports.order_view(conn, "WO-1")
    assert view is not None
    row = next(o for o in view["operations"] if o["operation"] == op)
    return row["waiting"], row["first_pass"]["value"]


def test_worked_example(engine: Engine, example_plant: Path) -> None:
    load_plant(engine, example_plant)
    snap = release_order(engine, "WO-1", "FG-BRACKET", D(10), on=date(2026, 11, 22))
    assert [o.number for o in snap.operations] == [10, 20, 30]
    assert snap.receiving_location == "FG"
    e1, e2, e3 = _events(example_plant)

    assert apply_events(engine, [e1])[0] == EventOutcome("LASER-1:parts:0:10", Status.APPLIED)
    assert _pool(engine, 20) == ("10", "71.10")

    assert apply_events(engine, [e2])[0].status == Status.APPLIED
    assert _pool(engine, 30) == ("8", "68.56")
    with engine.connect() as conn:
        assert reports.scrap_loss(conn) == D("17.14")

    assert apply_events(engine, [e3])[0].status == Status.APPLIED
    with engine.connect() as conn:
        report = reports.wip_value(conn)
        assert report.to_json()["total"] == "25.71"
        assert reports.wip_value(conn, by="operation").rows[0].key == {"work_order": "WO-1", "operation": 30}
        assert reports.scrap_loss(conn) == D("17.14")
        balances = reports.balances(conn)
        assert reports.unbalanced_entries(conn) == []
        by_prov = {r.key["provenance"]: r.value for r in reports.wip_value(conn, by="provenance").rows}
        # as of between events 2 and 3: 8 units at op 30 worth 68.56
        mid = reports.wip_value(conn, as_of=datetime(2026, 11, 22, 9, 30, tzinfo=UTC))
        assert mid.total == D("68.56")
    assert sum(by_prov.values()) == D("25.71")
    assert _pool(engine, 30) == ("3", "25.71")
    assert _balance(engine, "FG-BRACKET", "FG") == (D(5), D("53.95"))
    assert _balance(engine, "RM-STEEL", "STORES") == (D(90), D("360.00"))
    assert _balance(engine, "RM-BOLT", "STORES") == (D(480), D("48.00"))
    cost_in = -(balances["RM-INV"] + balances["ABSORBED-LABOR"] + balances["ABSORBED-MACHINE"]
                + balances["ABSORBED-ENERGY"])
    assert cost_in == D("96.80") == balances["FG-INV"] + balances["SCRAP-LOSS"] + balances["WIP"]

    result = close_order(engine, "WO-1", force=True)
    assert result.entry is not None
    with engine.connect() as conn:
        after = reports.balances(conn)
        assert reports.wip_value(conn).total == 0
        view = reports.order_view(conn, "WO-1")
    variances = sum((after.get(a.value, D(0)) for a in (Account.VAR_MATERIAL, Account.VAR_LABOR,
                                                         Account.VAR_ENERGY, Account.VAR_SCRAP)), D(0))
    assert variances == D("25.71")
    # 3 units waiting at op 30 carry op 10 + op 20 standard: material 4.00, conversion 3.10 + 1.36 each.
    assert after["VAR-SCRAP"] == D("25.38")
    assert view is not None and view["status"] == "closed"
    assert apply_events(engine, [{**e3, "event_id": "late"}])[0].reason == (
        "work order WO-1 is closed; event late cannot be applied")
