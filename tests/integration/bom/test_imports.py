"""CSV imports of BOMs, work centers and operations: all or nothing, every problem reported by row and column."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.engine import Engine

from bom import repository as bom_repo
from bom.importer import import_bom
from bom.tables import bom_versions
from mes_common.csv_report import CsvImportError
from routing import repository as routing_repo
from routing.importer import import_operations, import_work_centers
from routing.tables import routing_versions, work_centers
from tests.integration.bom.plant import load_items_and_locations

HEADER = "parent,revision,valid_from,valid_to,component,qty_per,uom,scrap_pct,operation,phantom"
OPS = ("item,revision,valid_from,valid_to,operation,work_center,setup_min,run_min_per_unit,std_kwh_per_unit,"
       "yield_pct,rework_to,quality_standard")
WCS = "code,name,labor_rate,machine_rate,energy_tariff,cost_center"


@pytest.fixture
def master(engine: Engine, example_plant: Path) -> Engine:
    with engine.begin() as conn:
        load_items_and_locations(conn, example_plant)
        import_work_centers(conn, example_plant / "work_centers.csv")
    return engine


def count(engine: Engine, table: Table) -> int:
    with engine.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_bom_import_reports_every_problem_and_writes_nothing(master: Engine) -> None:
    data = "\n".join([
        HEADER,
        "FG-BRACKET,A,2026-01-01,,RM-STEEL,1,pcs,0,10,false",
        "FG-BRACKET,A,2026-01-01,,RM-B\u00a0OLT,4,pcs,0,30,false",
        "FG-BRACKET,A,2026-01-01,,RM-NOPE,4,pcs,0,30,false",
        "FG-BRACKET,A,2026-01-01,,RM-BOLT,x,kg,0,30,maybe",
    ]).encode()
    with master.begin() as conn, pytest.raises(CsvImportError) as err:
        import_bom(conn, data, name="bom.csv")
    text = err.value.message
    assert "bom.csv: row 3, column component: U+00A0 NO-BREAK SPACE at position 5" in text
    assert "row 4, column component: unknown item RM-NOPE" in text
    assert "row 5, column qty_per: 'x' is not a decimal number" in text
    assert "row 5, column phantom: 'maybe' is not a boolean" in text
    assert count(master, bom_versions) == 0


def test_uom_mismatch_and_differing_effectivity_are_reported(master: Engine) -> None:
    data = "\n".join([
        HEADER,
        "FG-BRACKET,A,2026-01-01,,RM-STEEL,1,kg,0,10,false",
        "FG-BRACKET,A,2026-02-01,,RM-BOLT,4,pcs,0,30,false",
    ]).encode()
    with master.begin() as conn, pytest.raises(CsvImportError) as err:
        import_bom(conn, data, name="bom.csv")
    assert "row 2, column uom: kg but item RM-STEEL is counted in pcs" in err.value.message
    assert "row 3, column valid_from: BOM FG-BRACKET rev A: effectivity differs from row 2" in err.value.message


def test_cycle_in_an_import_is_reported_and_nothing_is_released(master: Engine) -> None:
    data = "\n".join([
        HEADER + ",fixed_qty",
        "FG-BRACKET,A,2026-01-01,,RM-STEEL,1,pcs,0,10,false,false",
        "RM-STEEL,A,2026-01-01,,FG-BRACKET,1,pcs,0,,false,true",
    ]).encode()
    cycle = r"BOM cycle as of 2026-01-01: (FG-BRACKET|RM-STEEL) → "
    with master.begin() as conn, pytest.raises(CsvImportError, match=cycle):
        import_bom(conn, data, name="bom.csv")
    assert count(master, bom_versions) == 0


def test_optional_fixed_qty_column_and_several_revisions(master: Engine) -> None:
    data = "\n".join([
        HEADER + ",fixed_qty",
        "FG-BRACKET,A,2026-01-01,2026-05-31,RM-STEEL,1,pcs,0,10,false,",
        "FG-BRACKET,B,2026-06-01,,RM-STEEL,1.1,pcs,5,10,false,false",
        "FG-BRACKET,B,2026-06-01,,RM-BOLT,2,pcs,,30,false,true",
    ]).encode()
    with master.begin() as conn:
        result = import_bom(conn, data, name="bom.csv")
        assert result.released == ["FG-BRACKET rev A", "FG-BRACKET rev B"]
        b = bom_repo.effective_bom(conn, "FG-BRACKET", date(2026, 6, 1))
        assert b is not None and b.revision == "B"
        assert [(ln.component, ln.scrap_pct, ln.fixed_qty) for ln in b.lines] == [
            ("RM-STEEL", Decimal(5), False), ("RM-BOLT", Decimal(0), True)]


def test_changing_a_released_revision_by_import_is_refused(master: Engine, example_plant: Path) -> None:
    with master.begin() as conn:
        import_bom(conn, example_plant / "bom.csv")
    data = (HEADER + "\nFG-BRACKET,A,2026-01-01,,RM-STEEL,2,pcs,0,10,false\n").encode()
    with master.begin() as conn, pytest.raises(CsvImportError, match="row 2, column revision: BOM FG-BRACKET rev A is"
                                                                     " released and cannot change"):
        import_bom(conn, data, name="bom.csv")


def test_operations_import_refuses_unknown_codes_and_bad_graphs(master: Engine) -> None:
    data = "\n".join([
        OPS + ",after",
        "FG-BRACKET,A,2026-01-01,,10,WC-LASER,0,2,0.5,100,,cut,",
        "FG-BRACKET,A,2026-01-01,,20,WC-NOPE,0,1,0.3,100,,bend,",
        "FG-BRACKET,A,2026-01-01,,30,WC-ASSY,0,3,0.1,100,40,assemble,10;x",
        "RM-NOPE,A,2026-01-01,,10,WC-ASSY,0,3,0.1,100,,x,",
        "RM-STEEL,A,2026-01-01,,10,WC-ASSY,0,3,0.1,0,,x,",
    ]).encode()
    with master.begin() as conn, pytest.raises(CsvImportError) as err:
        import_operations(conn, data, name="ops.csv")
    text = err.value.message
    assert "row 3, column work_center: unknown work center WC-NOPE" in text
    assert "row 4, column after: '10;x' is not a ';'-separated list of operation numbers" in text
    assert "row 5, column item: unknown item RM-NOPE" in text
    assert "row 6, column yield_pct: 0 must be greater than zero" in text
    assert "invalid literal" not in text
    assert count(master, routing_versions) == 0


def test_operations_with_after_build_a_dag(master: Engine) -> None:
    data = "\n".join([
        OPS + ",after",
        "FG-BRACKET,A,2026-01-01,,10,WC-LASER,5,2,0.5,100,,cut,",
        "FG-BRACKET,A,2026-01-01,,20,WC-PRESS,0,1,0.3,98.5,,bend,10",
        "FG-BRACKET,A,2026-01-01,,25,WC-PRESS,0,1,0.3,100,,drill,10",
        "FG-BRACKET,A,2026-01-01,,30,WC-ASSY,0,3,0.1,100,10,assemble,20;25",
    ]).encode()
    with master.begin() as conn:
        assert import_operations(conn, data, name="ops.csv").written == ["FG-BRACKET rev A"]
        routing = routing_repo.get_routing(conn, "FG-BRACKET", "A")
    assert routing.successors(10) == [20, 25]
    assert routing.predecessors(30) == [20, 25]
    assert routing.operation(20).yield_pct == Decimal("98.5")
    assert routing.operation(10).setup_min == Decimal(5)


def test_work_center_import_with_machines_terminals_and_supply_location(master: Engine) -> None:
    data = "\n".join([
        WCS + ",machines,terminals,supply_location",
        "WC-LASER,Laser cutting,31.50,60.00,0.20,CC-100,LASER-1;LASER-2,T-1,STORES",
        "WC-PRESS,Press brake,30.00,48.00,0.20,CC-200,PRESS-1,,",
    ]).encode()
    with master.begin() as conn:
        import_work_centers(conn, data, name="wc.csv")
        centers = routing_repo.work_centers(conn)
    assert centers["WC-LASER"].labor_rate == Decimal("31.50")
    assert centers["WC-LASER"].machines == ("CNC-1", "LASER-1", "LASER-2")  # CNC-1: not mentioned, still linked
    assert centers["WC-LASER"].terminals == ("T-1", "T-LASER-1")
    assert centers["WC-LASER"].supply_location == "STORES"
    assert centers["WC-PRESS"].supply_location is None
    assert count(master, work_centers) == 3


def test_work_center_import_refuses_bad_rows(master: Engine) -> None:
    data = "\n".join([
        WCS + ",machines,supply_location",
        "WC-X,X,-1,60.00,0.20,CC-100,M-1,",
        "WC-Z,Z,1,60.00,0.20,CC-100,,NOWHERE",
        "WC-Y,Y,1,1,0.2,CC\u200b1,M-1,",
    ]).encode()
    with master.begin() as conn, pytest.raises(CsvImportError) as err:
        import_work_centers(conn, data, name="wc.csv")
    text = err.value.message
    assert "row 2, column labor_rate: -1 is negative" in text
    assert "row 3, column supply_location: unknown location NOWHERE" in text
    assert "row 4, column cost_center: U+200B ZERO WIDTH SPACE at position 3" in text
    assert count(master, work_centers) == 3  # the example plant's, unchanged
