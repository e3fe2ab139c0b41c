"""SPEC's example plant imports cleanly on SQLite and PostgreSQL and rolls up to 10.68."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bom import repository as bom_repo
from bom.explosion import MaterialNeed, operation_materials
from bom.importer import import_bom
from bom.standard_cost import standard_cost
from routing import repository as routing_repo
from routing.importer import import_operations, import_work_centers
from routing.model import VersionState
from tests.integration.bom.plant import load_balances, load_items_and_locations

D = Decimal
DAY = date(2026, 11, 22)


@pytest.fixture
def plant(engine: Engine, example_plant: Path) -> Engine:
    with engine.begin() as conn:
        load_items_and_locations(conn, example_plant)
        load_balances(conn, example_plant)
        import_work_centers(conn, example_plant / "work_centers.csv")
        import_operations(conn, example_plant / "operations.csv")
        import_bom(conn, example_plant / "bom.csv")
    return engine


def test_example_plant_imports_and_reads_back(plant: Engine) -> None:
    with plant.begin() as conn:
        bom = bom_repo.effective_bom(conn, "FG-BRACKET", DAY)
        routing = routing_repo.effective_routing(conn, "FG-BRACKET", DAY)
        centers = routing_repo.work_centers(conn)
        assert bom is not None and routing is not None
        assert bom.state == VersionState.RELEASED and bom.revision == "A"
        assert [(ln.component, ln.qty_per, ln.operation) for ln in bom.lines] == [
            ("RM-STEEL", D(1), 10), ("RM-BOLT", D(4), 30)]
        assert [op.number for op in routing.in_order()] == [10, 20, 30]
        assert routing.operation(30).rework_to == 20
        assert routing.operation(10).quality_standard == "Cut to drawing BR-100 rev C"
        assert centers["WC-PRESS"].machine_rate == D("48.00")
        assert operation_materials(bom_repo.released_index(conn), bom, DAY) == {
            10: [MaterialNeed("RM-STEEL", D(1), False)], 30: [MaterialNeed("RM-BOLT", D(4), False)]}
        assert bom_repo.effective_bom(conn, "FG-BRACKET", date(2025, 12, 31)) is None


def test_example_plant_rolls_up_to_10_68(plant: Engine) -> None:
    with plant.begin() as conn:
        result = standard_cost(conn, "FG-BRACKET", DAY)
    assert result.material == D("4.40")
    assert {op: c.total for op, c in result.per_operation.items()} == {10: D("3.10"), 20: D("1.36"), 30: D("1.82")}
    assert result.total == D("10.68")


def test_reimporting_the_same_files_changes_nothing(plant: Engine, example_plant: Path) -> None:
    with plant.begin() as conn:
        token = routing_repo.current_token(conn, "bom")
        assert import_bom(conn, example_plant / "bom.csv").unchanged == ["FG-BRACKET rev A"]
        assert import_operations(conn, example_plant / "operations.csv").unchanged == ["FG-BRACKET rev A"]
        assert routing_repo.current_token(conn, "bom") == token
