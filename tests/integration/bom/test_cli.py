"""``mes-bridge bom ...`` and ``mes-bridge routing ...`` through the real CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from mes_bridge.cli import app
from tests.integration.bom.plant import load_balances, load_items_and_locations


@pytest.fixture
def cli(engine: Engine, db_url: str, example_plant: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("MES_BRIDGE_DATABASE_URL", db_url)
    with engine.begin() as conn:
        load_items_and_locations(conn, example_plant)
        load_balances(conn, example_plant)
    runner = CliRunner()
    for args in (["routing", "import", "work-centers", str(example_plant / "work_centers.csv")],
                 ["routing", "import", "operations", str(example_plant / "operations.csv")],
                 ["bom", "import", str(example_plant / "bom.csv")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
    return runner


def test_imports_say_what_they_released(cli: CliRunner, example_plant: Path) -> None:
    result = cli.invoke(app, ["bom", "import", str(example_plant / "bom.csv")])
    assert result.exit_code == 0
    assert "unchanged BOM FG-BRACKET rev A (already released, identical)" in result.output


def test_rollup_json_is_10_68(cli: CliRunner) -> None:
    result = cli.invoke(app, ["bom", "rollup", "FG-BRACKET", "--as-of", "2026-11-22", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["material"], data["total"]) == ("4.40", "10.68")
    assert {op: c["total"] for op, c in data["per_operation"].items()} == {"10": "3.10", "20": "1.36", "30": "1.82"}
    table = cli.invoke(app, ["bom", "rollup", "FG-BRACKET", "--as-of", "2026-11-22"])
    assert "    total: 10.68" in table.output


def test_explode_json_csv_and_table(cli: CliRunner) -> None:
    result = cli.invoke(app, ["bom", "explode", "FG-BRACKET", "--qty", "10", "--as-of", "2026-11-22",
                              "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [(r["component"], r["qty"], r["operation"], r["path"]) for r in data["rows"]] == [
        ("RM-STEEL", "10", 10, "FG-BRACKET > RM-STEEL"), ("RM-BOLT", "40", 30, "FG-BRACKET > RM-BOLT")]
    assert data["totals"] == [{"component": "RM-BOLT", "qty": "40", "uom": "pcs", "made": False},
                              {"component": "RM-STEEL", "qty": "10", "uom": "pcs", "made": False}]
    csv_out = cli.invoke(app, ["bom", "explode", "FG-BRACKET", "--qty", "10", "--as-of", "2026-11-22",
                               "--format", "csv"])
    assert csv_out.output.splitlines()[0] == "level,path,component,qty,uom,scrap_pct,operation,phantom,fixed_qty"
    assert csv_out.output.splitlines()[1] == "1,FG-BRACKET > RM-STEEL,RM-STEEL,10,pcs,0,10,False,False"
    table = cli.invoke(app, ["bom", "explode", "FG-BRACKET", "--qty", "10", "--as-of", "2026-11-22"])
    assert "FG-BRACKET rev A x 10 as of 2026-11-22" in table.output


def test_explode_xlsx_needs_output_and_writes_two_sheets(cli: CliRunner, tmp_path: Path) -> None:
    refused = cli.invoke(app, ["bom", "explode", "FG-BRACKET", "--qty", "2", "--format", "xlsx"])
    assert refused.exit_code == 1
    out = tmp_path / "x.xlsx"
    result = cli.invoke(app, ["bom", "explode", "FG-BRACKET", "--qty", "2", "--as-of", "2026-11-22",
                              "--format", "xlsx", "--output", str(out)])
    assert result.exit_code == 0, result.output
    book = load_workbook(out)
    assert book.sheetnames == ["explosion", "totals"]
    rows = list(book["totals"].values)
    assert rows[0] == ("component", "qty", "uom", "made")
    assert rows[1][:2] == ("RM-BOLT", 8)


def test_explode_before_effectivity_is_a_clear_error(cli: CliRunner) -> None:
    result = cli.invoke(app, ["bom", "explode", "FG-BRACKET", "--qty", "1", "--as-of", "2025-06-01"])
    assert result.exit_code == 1
    assert "error: no released BOM of FG-BRACKET is effective on 2025-06-01" in result.output


def test_where_used_and_diff(cli: CliRunner, tmp_path: Path) -> None:
    used = cli.invoke(app, ["bom", "where-used", "RM-BOLT", "--as-of", "2026-11-22", "--json"])
    assert json.loads(used.output)["rows"][0] | {"path": None} == {
        "level": 1, "parent": "FG-BRACKET", "revision": "A", "component": "RM-BOLT", "qty_per": "4",
        "operation": 30, "phantom": False, "qty": "4", "path": None}
    rev_b = tmp_path / "b.csv"
    rev_b.write_text("parent,revision,valid_from,valid_to,component,qty_per,uom,scrap_pct,operation,phantom\n"
                     "FG-BRACKET,B,2030-01-01,,RM-STEEL,1,pcs,5,10,false\n", encoding="utf-8")
    refused = cli.invoke(app, ["bom", "import", str(rev_b)])
    assert refused.exit_code == 1
    assert "overlaps released revision A (2026-01-01..open)" in refused.output
    assert cli.invoke(app, ["bom", "import", str(rev_b), "--supersede"]).exit_code == 0
    versions = cli.invoke(app, ["bom", "versions", "FG-BRACKET"]).output
    assert "2026-01-01  2029-12-31" in versions
    result = cli.invoke(app, ["bom", "diff", "FG-BRACKET", "A", "B"])
    assert result.exit_code == 0, result.output
    assert "- RM-BOLT qty_per 4 pcs at op 30" in result.output
    assert "~ RM-STEEL: scrap_pct 0 -> 5" in result.output
    assert "  valid_from: 2026-01-01 -> 2030-01-01" in result.output
    assert "  valid_to: 2029-12-31 -> None" in result.output


def test_import_errors_exit_non_zero_with_the_report(cli: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("parent,revision,valid_from,valid_to,component,qty_per,uom,scrap_pct,operation,phantom\n"
                   "FG-BRACKET,C,2031-01-01,,RM-STEEL\u200b,1,pcs,0,10,false\n", encoding="utf-8")
    result = cli.invoke(app, ["bom", "import", str(bad)])
    assert result.exit_code == 1
    assert "bad.csv: row 2, column component: U+200B ZERO WIDTH SPACE at position 9" in result.output


def test_plan_lists_shortages(cli: CliRunner, tmp_path: Path) -> None:
    plan = tmp_path / "plan.csv"
    plan.write_text("item,qty,due\nFG-BRACKET,150,2026-12-01\n", encoding="utf-8")
    result = cli.invoke(app, ["bom", "plan", str(plan), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["component"]: r for r in json.loads(result.output)["rows"]}
    assert rows["RM-STEEL"]["net"] == "50"  # 150 needed, 100 in stores
    assert rows["RM-BOLT"]["net"] == "100"  # 600 needed, 500 in stores
    assert rows["FG-BRACKET"]["net"] == "150"
    out = tmp_path / "plan.xlsx"
    assert cli.invoke(app, ["bom", "plan", str(plan), "--format", "xlsx", "--output", str(out)]).exit_code == 0
    sheet = list(load_workbook(out)["requirements"].values)
    assert sheet[0][:3] == ("component", "uom", "made")
    assert ("RM-STEEL", 50) in [(row[0], row[7]) for row in sheet[1:]]


def test_routing_show_and_work_centers(cli: CliRunner) -> None:
    shown = json.loads(cli.invoke(app, ["routing", "show", "FG-BRACKET", "--as-of", "2026-11-22", "--json"]).output)
    assert [(op["operation"], op["after"], op["rework_to"]) for op in shown["operations"]] == [
        (10, [], None), (20, [10], None), (30, [20], 20)]
    centers = json.loads(cli.invoke(app, ["routing", "work-centers", "--json"]).output)["rows"]
    assert [c["code"] for c in centers] == ["WC-ASSY", "WC-LASER", "WC-PRESS"]
