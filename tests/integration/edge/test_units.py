"""Units of measure carry their decimals (pcs 0, kg 3): a quantity with more is refused naming the unit, in
events, balance imports, manual moves and releases — exit code 1, nothing written (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.engine import Engine

from tests.integration.wip_costing.plant import load_plant

from .helpers import cli, ledger_state


def _released(engine: Engine, db_url: str, example_plant: Path) -> None:
    load_plant(engine, example_plant)
    assert cli(db_url, "wo", "release", "FG-BRACKET", "10", "--id", "WO-1", "--date", "2026-11-22")[0] == 0


def test_an_event_with_half_a_piece_is_refused(engine: Engine, db_url: str, example_plant: Path,
                                               tmp_path: Path) -> None:
    _released(engine, db_url, example_plant)
    before = ledger_state(db_url)
    event = {"event_id": "E-half", "work_order": "WO-1", "operation": 10, "good": 2.5, "provenance": "manual",
             "source_time": "2026-11-22T08:00:00Z"}
    path = tmp_path / "half.jsonl"
    path.write_text(json.dumps(event) + "\n")
    code, out, _ = cli(db_url, "events", "apply", str(path))
    assert code == 1
    assert out == ("rejected E-half: event E-half: field 'good': 2.5 is not a whole number of pcs (work order WO-1 "
                   "makes FG-BRACKET, counted in pcs)\n")
    assert ledger_state(db_url) == before
    code, out, _ = cli(db_url, "events", "list", "--status", "rejected")
    assert "2.5 is not a whole number of pcs" in out


def test_half_a_piece_in_balances_moves_and_releases_is_refused(engine: Engine, db_url: str, example_plant: Path,
                                                               tmp_path: Path) -> None:
    load_plant(engine, example_plant)
    before = ledger_state(db_url)
    path = tmp_path / "balances.csv"
    path.write_text("item,location,lot,qty,unit_cost\nRM-BOLT,STORES,L-1,2.5,0.10\n")
    code, _, err = cli(db_url, "ledger", "import", "balances", str(path))
    assert code == 1
    assert "balances.csv: row 2, column qty: 2.5 is not a whole number of pcs (item RM-BOLT)" in err
    code, _, err = cli(db_url, "ledger", "receive", "RM-BOLT", "2.5", "--to", "STORES", "--unit-cost", "1",
                       "--key", "k-half")
    assert (code, err) == (1, "error: receipt of RM-BOLT (k-half): 2.5 is not a whole number of pcs\n")
    code, _, err = cli(db_url, "wo", "release", "FG-BRACKET", "2.5", "--id", "WO-H", "--date", "2026-11-22")
    assert (code, err) == (1, "error: work order WO-H: quantity: 2.5 is not a whole number of pcs\n")
    assert ledger_state(db_url) == before


def test_kilograms_take_three_places(engine: Engine, db_url: str, example_plant: Path, tmp_path: Path) -> None:
    load_plant(engine, example_plant)
    items = tmp_path / "items.csv"
    items.write_text("code,name,uom,kind\nRM-WIRE,Copper wire,kg,raw\n")
    assert cli(db_url, "ledger", "import", "items", str(items))[0] == 0
    base = ("ledger", "receive", "RM-WIRE", "--to", "STORES", "--unit-cost", "9")
    code, _, err = cli(db_url, *base[:3], "1.2345", *base[3:], "--key", "k-wire")
    assert (code, err) == (1, "error: receipt of RM-WIRE (k-wire): 1.2345 has more than 3 decimal places for a "
                              "quantity in kg\n")
    code, out, _ = cli(db_url, *base[:3], "1.234", *base[3:])
    assert code == 0 and "receipt 1.234 RM-WIRE" in out
