"""Files as spreadsheets write them and the messages a new user meets (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.engine import Engine

from tests.integration.wip_costing.plant import load_plant

from .helpers import cli, ledger_state


def test_excel_csv_utf8_with_a_byte_order_mark_is_imported(db_url: str, example_plant: Path, tmp_path: Path) -> None:
    for kind in ("items", "locations", "balances"):
        path = tmp_path / f"{kind}.csv"
        path.write_bytes(b"\xef\xbb\xbf" + (example_plant / f"{kind}.csv").read_bytes().replace(b"\n", b"\r\n"))
        code, out, err = cli(db_url, "ledger", "import", kind, str(path))
        assert code == 0, err
    assert out == "balances from balances.csv: 2 imported, 0 already present\n"
    rows = json.loads(cli(db_url, "ledger", "onhand", "--json")[1])["rows"]
    assert [(r["item"], r["qty"], r["value"]) for r in rows] == [("RM-BOLT", "500", "50.00"),
                                                                 ("RM-STEEL", "100", "400.00")]


def test_semicolon_and_tab_separated_files_are_read(db_url: str, example_plant: Path, tmp_path: Path) -> None:
    for kind, sep in (("items", b";"), ("locations", b"\t"), ("balances", b";")):
        path = tmp_path / f"{kind}.csv"
        path.write_bytes((example_plant / f"{kind}.csv").read_bytes().replace(b",", sep))
        code, _, err = cli(db_url, "ledger", "import", kind, str(path))
        assert code == 0, err
    assert json.loads(cli(db_url, "ledger", "onhand", "RM-STEEL", "--json")[1])["rows"][0]["qty"] == "100"


def test_a_semicolon_file_that_does_not_fit_is_refused_naming_the_delimiter(db_url: str, tmp_path: Path) -> None:
    before = ledger_state(db_url)
    path = tmp_path / "items.csv"
    path.write_text("code;name;unit;kind\nRM-X;X;pcs;raw\n")
    code, _, err = cli(db_url, "ledger", "import", "items", str(path))
    assert code == 1
    assert ("items.csv: row 1: header is 'code;name;unit;kind', expected exactly 'code,name,uom,kind' (separated by "
            "semicolons: such a file is read only when its header names exactly the expected columns)") in err
    assert ledger_state(db_url) == before


def test_messages_for_nothing_to_list_and_a_quantity_in_words(engine: Engine, db_url: str,
                                                              example_plant: Path) -> None:
    load_plant(engine, example_plant)
    assert cli(db_url, "events", "list") == (0, "no rejected or conflicting events stored\n", "")
    assert cli(db_url, "events", "list", "--status", "conflict") == (0, "no conflict events stored\n", "")
    before = ledger_state(db_url)
    assert cli(db_url, "wo", "release", "FG-BRACKET", "ten", "--id", "WO-1") == (
        1, "", "error: quantity must be a number, got 'ten'\n")
    assert ledger_state(db_url) == before


def test_a_bom_line_at_an_operation_the_routing_lacks_is_refused_at_import(
        engine: Engine, db_url: str, example_plant: Path, tmp_path: Path) -> None:
    load_plant(engine, example_plant)
    before = ledger_state(db_url)
    path = tmp_path / "bom.csv"
    path.write_text("parent,revision,valid_from,valid_to,component,qty_per,uom,scrap_pct,operation,phantom\n"
                    "FG-BRACKET,B,2027-01-01,,RM-STEEL,1,pcs,0,10,false\n"
                    "FG-BRACKET,B,2027-01-01,,RM-BOLT,4,pcs,0,40,false\n")
    code, _, err = cli(db_url, "bom", "import", str(path))
    assert code == 1
    assert ("bom.csv: row 3, column operation: BOM FG-BRACKET rev B consumes RM-BOLT at operation 40, which "
            "routing FG-BRACKET rev A (effective 2027-01-01) does not have (operations 10, 20, 30)") in err
    assert ledger_state(db_url) == before
    assert "rev B" not in cli(db_url, "bom", "where-used", "RM-BOLT")[1]
