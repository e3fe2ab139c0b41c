"""Every outcome of ``apply_events``: applied, duplicate, conflict, rejected (stored, with the reason), and one bad
event never blocks the good ones of its batch."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from wip_costing import reports
from wip_costing.events import Status
from wip_costing.service import apply_events, close_order, release_order
from wip_costing.tables import event_problems, journal_lines, operation_events

from .plant import load_plant


def ev(event_id: str, op: int | None, good: Any = 0, scrap: Any = 0, rework: Any = 0, **extra: Any) -> dict:
    return {"event_id": event_id, "work_order": "WO-1", "operation": op, "good": good, "scrap": scrap,
            "rework": rework, "provenance": "sensor", "source_time": "2026-11-22T08:00:00Z", **extra}


@pytest.fixture
def plant(engine: Engine, example_plant: Path) -> Engine:
    load_plant(engine, example_plant)
    release_order(engine, "WO-1", "FG-BRACKET", Decimal(10), on=date(2026, 11, 22), serials=["SN-1", "SN-2"])
    return engine


def _count(engine: Engine, table: Any, **where: Any) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(table)
        for k, v in where.items():
            query = query.where(table.c[k] == v)
        return int(conn.execute(query).scalar_one())


def test_bad_events_are_rejected_stored_and_do_not_block_good_ones(plant: Engine) -> None:
    batch = [
        ev("ok-1", 10, good=4, kwh="2"),
        ev("unknown-order", 10, good=1, work_order="WO-404"),
        ev("bad-op", 15, good=1),
        ev("too-many", 10, good=7),
        ev("negative", 10, good=-1),
        ev("no-rework-op", 10, good=1, rework=1),
        {"event_id": "float", "work_order": "WO-1", "good": 1, "provenance": "psychic",
         "source_time": "2026-11-22T08:00:00Z"},
        ev("ok-2", 10, good=6),
        ev("wrong-wc", 20, good=1, work_center="WC-LASER"),
        ev("ok-3", None, good=5, work_center="WC-PRESS"),
        ev("by-serial", 20, good=1, work_order=None, serial="SN-2"),
        ev("unknown-serial", 20, good=1, work_order=None, serial="SN-9"),
    ]
    outcomes = apply_events(plant, batch)
    got = {o.event_id: (o.status, o.reason) for o in outcomes}
    assert [o.event_id for o in outcomes] == [e["event_id"] for e in batch]
    applied = {k for k, (s, _) in got.items() if s == Status.APPLIED}
    assert applied == {"ok-1", "ok-2", "ok-3", "by-serial"}
    assert got["unknown-order"][1] == "event unknown-order: unknown work order WO-404"
    assert got["bad-op"][1] == ("work order WO-1: operation 15 is not in routing FG-BRACKET rev A "
                                "(operations 10, 20, 30)")
    assert got["too-many"][1] == "work order WO-1 operation 10: completion of 7 units exceeds the 6 waiting"
    assert got["negative"][1] == "event 'negative': field 'good': must not be negative, got -1"
    assert "has no rework operation" in (got["no-rework-op"][1] or "")
    assert "'psychic' is not one of sensor, scan, manual" in (got["float"][1] or "")
    assert got["wrong-wc"][1] == ("work order WO-1 operation 20 runs at WC-PRESS, but event wrong-wc comes from "
                                  "WC-LASER")
    assert got["unknown-serial"][1] == "event unknown-serial: unknown serial SN-9"
    assert _count(plant, event_problems, status="rejected") == 8
    assert _count(plant, operation_events) == 4
    with plant.connect() as conn:
        view = reports.order_view(conn, "WO-1")
        assert reports.unbalanced_entries(conn) == []
    assert view is not None
    assert [o["waiting"] for o in view["operations"]] == ["0", "4", "6"]


def test_duplicates_and_conflicts_also_inside_one_batch(plant: Engine) -> None:
    first = ev("e-1", 10, good=2)
    out = apply_events(plant, [first, first, {**first, "good": 3}])
    assert [o.status for o in out] == [Status.APPLIED, Status.DUPLICATE, Status.CONFLICT]
    again = apply_events(plant, [first, {**first, "scrap": 1}])
    assert [o.status for o in again] == [Status.DUPLICATE, Status.CONFLICT]
    assert _count(plant, event_problems, status="conflict") == 2
    assert _count(plant, operation_events) == 1
    with plant.connect() as conn:
        view = reports.order_view(conn, "WO-1")
    assert view is not None and view["operations"][1]["waiting"] == "2"


def test_a_rejected_event_can_be_sent_again_once_fixed(plant: Engine) -> None:
    early = ev("e-20", 20, good=2)
    assert apply_events(plant, [early])[0].status == Status.REJECTED
    assert apply_events(plant, [ev("e-10", 10, good=2), early])[1].status == Status.APPLIED


def test_short_stock_rejects_the_whole_event(plant: Engine) -> None:
    assert apply_events(plant, [ev("a", 10, good=10), ev("b", 20, good=10)])[1].status == Status.APPLIED
    with plant.begin() as conn:  # leave only 30 bolts: 8 units need 32
        conn.execute(text("UPDATE stock_balances SET qty = qty - :q, value = value - :v WHERE item = 'RM-BOLT'"),
                     {"q": 470 * (10**6 if plant.dialect.name == "sqlite" else 1),
                      "v": 4700 if plant.dialect.name == "sqlite" else Decimal("47.00")})
    out = apply_events(plant, [ev("c", 30, good=8), ev("d", 30, good=7)])
    assert out[0].status == Status.REJECTED
    assert out[0].reason == "insufficient stock of RM-BOLT at STORES: requested 32, available 30"
    assert out[1].status == Status.APPLIED
    with plant.connect() as conn:
        view = reports.order_view(conn, "WO-1")
    assert view is not None and view["operations"][2]["waiting"] == "3"


def test_closed_order_rejects_events(plant: Engine) -> None:
    close_order(plant, "WO-1", force=True)
    out = apply_events(plant, [ev("late", 10, good=1), ev("later", 99, good=1)])
    assert out[0].reason == "work order WO-1 is closed; event late cannot be applied"
    # A closed order is the reason given even when the operation is not in its routing either.
    assert out[1].reason == "work order WO-1 is closed; event later cannot be applied"


def test_operation_from_work_center_must_be_unambiguous(engine: Engine, example_plant: Path, tmp_path: Path) -> None:
    load_plant(engine, example_plant)
    from routing.importer import import_operations

    ops = tmp_path / "ops.csv"
    ops.write_text(
        "item,revision,valid_from,valid_to,operation,work_center,setup_min,run_min_per_unit,std_kwh_per_unit,"
        "yield_pct,rework_to,quality_standard\n"
        "RM-BOLT,R,2026-01-01,,10,WC-ASSY,0,1,0,100,,\n"
        "RM-BOLT,R,2026-01-01,,20,WC-ASSY,0,1,0,100,,\n"
    )
    with engine.begin() as conn:
        import_operations(conn, ops)
    release_order(engine, "WO-B", "RM-BOLT", Decimal(5), on=date(2026, 11, 22))
    out = apply_events(engine, [ev("x", None, good=1, work_order="WO-B", work_center="WC-ASSY")])
    assert out[0].reason == ("work order WO-B: cannot tell the operation from work center WC-ASSY: routing RM-BOLT "
                             "rev R has 2 operations there (10, 20); send the operation number")


def test_journal_lines_are_append_only(plant: Engine) -> None:
    apply_events(plant, [ev("a", 10, good=1)])
    assert _count(plant, journal_lines) > 0
    for statement in ("UPDATE journal_lines SET debit = 0", "DELETE FROM journal_lines"):
        with pytest.raises(DBAPIError, match="append-only"), plant.begin() as conn:
            conn.execute(text(statement))
    assert _count(plant, journal_lines) > 0


def test_ids_with_copy_special_characters_round_trip(plant: Engine) -> None:
    odd = "PLC\\7:parts:N:1"  # a backslash and a \N look-alike must not be read as COPY escapes
    assert apply_events(plant, [ev(odd, 10, good=1)])[0].status == Status.APPLIED
    with plant.connect() as conn:
        ids = {r["event_id"] for r in reports.journal_lines_between(conn, None, None)}
        stored = conn.execute(select(operation_events.c.event_id)).scalars().all()
    assert ids == {odd} and stored == [odd]
