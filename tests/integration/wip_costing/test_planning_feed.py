"""Open work orders feed the planner: their remaining component needs net a plan (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from mes_bridge.cli import app
from wip_costing.planning_feed import open_component_needs
from wip_costing.service import apply_events, close_order, release_order

from .plant import load_plant


def example_events(folder: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture
def wo1_after_op_10(engine: Engine, example_plant: Path) -> Engine:
    load_plant(engine, example_plant)
    release_order(engine, "WO-1", "FG-BRACKET", Decimal(10), on=date(2026, 11, 22))
    with engine.connect() as conn:
        assert open_component_needs(conn) == {"RM-STEEL": Decimal(10), "RM-BOLT": Decimal(40)}
    first = example_events(example_plant)[0]
    assert first["operation"] == 10
    assert apply_events(engine, [first])[0].status.value == "applied"
    return engine


def test_open_needs_follow_progress_and_end_with_the_order(wo1_after_op_10: Engine, example_plant: Path) -> None:
    engine = wo1_after_op_10
    with engine.connect() as conn:
        needs = open_component_needs(conn)
    # Steel was issued at op 10; the 40 bolts of op 30 are still to come.
    assert needs.get("RM-STEEL", Decimal(0)) == 0
    assert needs == {"RM-BOLT": Decimal(40)}
    second, third = example_events(example_plant)[1:3]
    assert [o.status.value for o in apply_events(engine, [second, third])] == ["applied", "applied"]
    with engine.connect() as conn:
        # 2 scrapped at op 20 never reach op 30; 5 assembled: 3 units x 4 bolts remain.
        assert open_component_needs(conn) == {"RM-BOLT": Decimal(12)}
    close_order(engine, "WO-1", force=True)
    with engine.connect() as conn:
        assert open_component_needs(conn) == {}


def test_plan_nets_against_open_work_orders(wo1_after_op_10: Engine, db_url: str, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MES_BRIDGE_DATABASE_URL", db_url)
    plan = tmp_path / "plan.csv"
    plan.write_text("item,qty,due\nFG-BRACKET,150,2026-12-01\n", encoding="utf-8")
    runner = CliRunner()

    def rows(*extra: str) -> dict[str, dict[str, str]]:
        result = runner.invoke(app, ["bom", "plan", str(plan), "--format", "json", *extra])
        assert result.exit_code == 0, result.output
        return {r["component"]: r for r in json.loads(result.output)["rows"]}

    netted = rows()
    # Bolts: 500 on hand, 40 owed to WO-1 -> 460 available for 600 -> 140 short.
    assert {k: netted["RM-BOLT"][k] for k in ("on_hand", "open_needs", "available", "net")} == {
        "on_hand": "500", "open_needs": "40", "available": "460", "net": "140"}
    # Steel: 90 left after op 10 issued 10, nothing more owed -> 60 short.
    assert (netted["RM-STEEL"]["open_needs"], netted["RM-STEEL"]["net"]) == ("0", "60")
    table = runner.invoke(app, ["bom", "plan", str(plan)])
    assert table.exit_code == 0, table.output
    bolt_line = next(line for line in table.output.splitlines() if line.startswith("RM-BOLT"))
    assert bolt_line.split()[2:8] == ["False", "600", "500", "40", "460", "140"]

    needs = tmp_path / "needs.csv"
    needs.write_text("item,qty\nRM-BOLT,60\n", encoding="utf-8")
    added = rows("--open-needs", str(needs))
    assert (added["RM-BOLT"]["open_needs"], added["RM-BOLT"]["net"]) == ("100", "200")
    instead = rows("--open-needs", str(needs), "--no-wip")
    assert (instead["RM-BOLT"]["open_needs"], instead["RM-BOLT"]["net"]) == ("60", "160")
    without = rows("--no-wip")
    assert (without["RM-BOLT"]["open_needs"], without["RM-BOLT"]["net"]) == ("0", "100")
