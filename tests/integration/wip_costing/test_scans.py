"""Work orders scanned at machines: validation, the latest scan per machine, append-only, and ``wo scan``."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from mes_bridge.cli import app
from mes_common.errors import DomainError
from wip_costing.scans import current_scans, record_scan
from wip_costing.service import apply_events, close_order, release_order
from wip_costing.tables import machine_scans

from .plant import load_plant


@pytest.fixture
def plant(engine: Engine, example_plant: Path) -> Engine:
    load_plant(engine, example_plant)
    release_order(engine, "WO-1", "FG-BRACKET", Decimal(10), on=date(2026, 11, 22))
    release_order(engine, "WO-2", "FG-BRACKET", Decimal(5), on=date(2026, 11, 22))
    return engine


def scan_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(machine_scans)).scalar_one())


def test_latest_scan_per_machine_is_current(plant: Engine) -> None:
    with plant.begin() as conn:
        first = record_scan(conn, "LASER-1", "WO-1", operator="E-107", terminal="T-LASER-1")
        record_scan(conn, "PRESS-1", "WO-1")
        record_scan(conn, "LASER-1", "WO-2")
    assert (first.operation, first.work_center, first.operator) == (10, "WC-LASER", "E-107")
    with plant.connect() as conn:
        assert current_scans(conn, ["LASER-1", "PRESS-1", "VISION-1"]) == {"LASER-1": "WO-2", "PRESS-1": "WO-1"}
        assert current_scans(conn, []) == {}
    assert scan_count(plant) == 3


@pytest.mark.parametrize(("machine", "order", "terminal", "message"), [
    ("LASER-9", "WO-1", None, "machine 'LASER-9' belongs to no work center"),
    ("LASER-1", "WO-7", None, "work order 'WO-7' does not exist (scanned at machine LASER-1)"),
    ("LASER-1", "WO-1", "T-NOWHERE", "terminal 'T-NOWHERE' belongs to no work center"),
    ("LASER-1", "WO-1", "T-PRESS-1", "terminal T-PRESS-1 belongs to WC-PRESS, machine LASER-1 to WC-LASER"),
])
def test_bad_scans_are_refused_and_write_nothing(plant: Engine, machine: str, order: str, terminal: str | None,
                                                 message: str) -> None:
    with pytest.raises(DomainError) as refused, plant.begin() as conn:
        record_scan(conn, machine, order, terminal=terminal)
    assert refused.value.message.startswith(message)
    assert scan_count(plant) == 0


def test_a_completed_or_closed_order_cannot_be_scanned(plant: Engine) -> None:
    # WO-2's 5 units through all three operations: completed.
    events = [{"event_id": f"e{op}", "work_order": "WO-2", "operation": op, "good": 5, "scrap": 0, "rework": 0,
               "provenance": "manual", "source_time": "2026-11-22T08:00:00Z"} for op in (10, 20, 30)]
    assert [o.status.value for o in apply_events(plant, events)] == ["applied"] * 3
    with pytest.raises(DomainError, match="work order WO-2 is completed"), plant.begin() as conn:
        record_scan(conn, "LASER-1", "WO-2")
    close_order(plant, "WO-2", force=True)
    with pytest.raises(DomainError, match="work order WO-2 is closed"), plant.begin() as conn:
        record_scan(conn, "LASER-1", "WO-2")
    assert scan_count(plant) == 0


def test_scans_are_append_only(plant: Engine) -> None:
    with plant.begin() as conn:
        record_scan(conn, "LASER-1", "WO-1")
    for statement in ("UPDATE machine_scans SET work_order = 'WO-2'", "DELETE FROM machine_scans"):
        with pytest.raises(DBAPIError, match="append-only"), plant.begin() as conn:
            conn.execute(text(statement))
    with plant.connect() as conn:
        assert current_scans(conn, ["LASER-1"]) == {"LASER-1": "WO-1"}


def test_wo_scan_command(plant: Engine, db_url: str) -> None:
    runner = CliRunner()
    env = {"MES_BRIDGE_DATABASE_URL": db_url}
    ok = runner.invoke(app, ["wo", "scan", "WO-1", "--machine", "PRESS-1", "--operator", "E-7"], env=env)
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith("PRESS-1 now works on WO-1 (operation 20 at WC-PRESS), scanned 20")
    bad = runner.invoke(app, ["wo", "scan", "WO-1", "--machine", "PRESS-2"], env=env)
    assert bad.exit_code == 1
    assert "error: machine 'PRESS-2' belongs to no work center" in bad.output
    with plant.connect() as conn:
        assert current_scans(conn, ["PRESS-1", "PRESS-2"]) == {"PRESS-1": "WO-1"}
