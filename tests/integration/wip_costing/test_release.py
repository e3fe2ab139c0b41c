"""Release freezes the BOM and routing versions effective on the release date, with the rates of that day."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bom import repository as bom_repo
from bom.importer import import_bom
from mes_common.errors import DomainError
from routing import repository as routing_repo
from routing.importer import import_operations
from wip_costing import reports
from wip_costing.service import apply_events, release_order

from .plant import load_plant

HEADER = ("item,revision,valid_from,valid_to,operation,work_center,setup_min,run_min_per_unit,std_kwh_per_unit,"
          "yield_pct,rework_to,quality_standard\n")


def test_later_revisions_and_rate_changes_do_not_touch_a_released_order(engine: Engine, example_plant: Path,
                                                                       tmp_path: Path) -> None:
    load_plant(engine, example_plant)
    snap = release_order(engine, "WO-1", "FG-BRACKET", Decimal(10), on=date(2026, 11, 22))
    assert (snap.bom_revision, snap.routing_revision) == ("A", "A")
    # Engineering changes after release: new routing and BOM revisions, and a dearer laser.
    with engine.begin() as conn:
        laser = routing_repo.work_centers(conn, ["WC-LASER"])["WC-LASER"]
        from dataclasses import replace

        routing_repo.save_work_centers(conn, [replace(laser, labor_rate=Decimal("99.00"))],
                                       effective=date(2026, 11, 23))
    ops, bom = tmp_path / "ops.csv", tmp_path / "bom.csv"
    ops.write_text(HEADER + "FG-BRACKET,B,2026-11-23,,10,WC-LASER,0,9.0,0.5,100,,\n")
    bom.write_text("parent,revision,valid_from,valid_to,component,qty_per,uom,scrap_pct,operation,phantom\n"
                   "FG-BRACKET,B,2026-11-23,,RM-STEEL,3,pcs,0,10,false\n")
    with engine.begin() as conn:
        routing_repo.obsolete_routing(conn, "FG-BRACKET", "A")
        bom_repo.obsolete_bom(conn, "FG-BRACKET", "A")
        import_operations(conn, ops)
        import_bom(conn, bom)
    line = {"event_id": "e1", "work_order": "WO-1", "operation": 10, "good": 10, "kwh": "5.5",
            "provenance": "sensor", "source_time": "2026-11-24T08:00:00Z"}
    assert apply_events(engine, [line])[0].status.value == "applied"
    with engine.connect() as conn:
        assert reports.wip_value(conn).total == Decimal("71.10")  # rev A times, old rate, 1 steel per unit
    later = release_order(engine, "WO-2", "FG-BRACKET", Decimal(1), on=date(2026, 11, 24))
    assert (later.bom_revision, later.routing_revision) == ("B", "B")
    assert later.operations[0].labor_rate == Decimal("99.00")  # the rates effective on its release date
    with engine.connect() as conn:
        on_the_22nd = routing_repo.work_centers(conn, ["WC-LASER"], as_of=date(2026, 11, 22))["WC-LASER"]
    assert on_the_22nd.labor_rate == Decimal(30)
    assert later.operations[0].materials[0].qty_per_unit == 3


def test_release_refusals_name_the_problem(engine: Engine, example_plant: Path) -> None:
    load_plant(engine, example_plant)
    release_order(engine, "WO-1", "FG-BRACKET", Decimal(10), on=date(2026, 11, 22))
    with pytest.raises(DomainError, match="work order WO-1 already exists"):
        release_order(engine, "WO-1", "FG-BRACKET", Decimal(10), on=date(2026, 11, 22))
    with pytest.raises(DomainError, match="no released routing of FG-BRACKET is effective on 2025-01-01"):
        release_order(engine, "WO-2", "FG-BRACKET", Decimal(10), on=date(2025, 1, 1))
    with pytest.raises(DomainError, match="unknown item NOPE"):
        release_order(engine, "WO-3", "NOPE", Decimal(10), on=date(2026, 11, 22))
    with pytest.raises(DomainError, match="quantity must be positive"):
        release_order(engine, "WO-4", "FG-BRACKET", Decimal(0), on=date(2026, 11, 22))


def test_units_flow_through_every_branch_of_a_dag_routing(engine: Engine, example_plant: Path,
                                                           tmp_path: Path) -> None:
    load_plant(engine, example_plant)
    # Rev B: after cutting (10), bending (20) and deburring (25) are parallel branches joining at assembly (30).
    ops = tmp_path / "ops.csv"
    ops.write_text(HEADER.replace("quality_standard\n", "quality_standard,after\n")
                   + "FG-BRACKET,B,2026-11-23,,10,WC-LASER,0,2,0.5,100,,,\n"
                   + "FG-BRACKET,B,2026-11-23,,20,WC-PRESS,0,1,0.3,100,,,10\n"
                   + "FG-BRACKET,B,2026-11-23,,25,WC-ASSY,0,1,0,100,,,10\n"
                   + "FG-BRACKET,B,2026-11-23,,30,WC-ASSY,0,3,0.1,100,,,20;25\n")
    with engine.begin() as conn:
        routing_repo.obsolete_routing(conn, "FG-BRACKET", "A")
        import_operations(conn, ops)
    snap = release_order(engine, "WO-D", "FG-BRACKET", Decimal(2), on=date(2026, 11, 23))
    assert [(o.number, o.next_op) for o in snap.operations] == [(10, 20), (20, 25), (25, 30), (30, None)]

    def event(op: int, n: int = 1) -> dict[str, object]:
        return {"event_id": f"d{op}-{n}", "work_order": "WO-D", "operation": op, "good": 2,
                "provenance": "sensor", "source_time": "2026-11-23T08:00:00Z"}

    outcomes = apply_events(engine, [event(10), event(25), event(20), event(25, 2), event(30)])
    assert [o.status.value for o in outcomes] == ["applied", "rejected", "applied", "applied", "applied"]
    assert "waiting" in (outcomes[1].reason or "")  # deburring before bending: not yet there in the flow
    with engine.connect() as conn:
        view = reports.order_view(conn, "WO-D")
        assert view is not None
        assert [(o["operation"], o["completed_good"]) for o in view["operations"]] == [
            (10, "2"), (20, "2"), (25, "2"), (30, "2")]
        assert reports.wip_value(conn).total == Decimal("0.00")
        # per unit: material 4.40 + laser 3.10 + press 1.36 + deburring 0.60 + assembly 1.82 = 11.28
        assert reports.balances(conn)["FG-INV"] == Decimal("22.56")
