"""Numbers and ids beyond their documented range, in CSV files and on the command line: refused with the field,
its range, exit code 1, and nothing written (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.integration.wip_costing.plant import load_plant

from .helpers import cli, ledger_state

BALANCES = "item,location,lot,qty,unit_cost\n"
BOM = "parent,revision,valid_from,valid_to,component,qty_per,uom,scrap_pct,operation,phantom\n"
WORK_CENTERS = "code,name,labor_rate,machine_rate,energy_tariff,cost_center,machines,terminals\n"
ITEMS = "code,name,uom,kind\n"


@pytest.mark.parametrize(("command", "content", "message"), [
    (("ledger", "import", "balances"), BALANCES + "RM-STEEL,STORES,,1000000000000000000000000000000,4\n",
     "f.csv: row 2, column qty: 1000000000000000000000000000000 is out of range (allowed: above 0 to "
     "1,000,000,000)"),
    (("ledger", "import", "balances"), BALANCES + "RM-STEEL,STORES,,999999999,999999\n",
     "f.csv: row 2, column unit_cost: value 999998999000001.00 is out of range (allowed: 0 to "
     "1,000,000,000,000) (qty x unit cost)"),
    (("ledger", "import", "balances"), BALANCES + "RM-STEEL,STORES,,1,10000000\n",
     "f.csv: row 2, column unit_cost: 10000000 is out of range (allowed: 0 to 1,000,000)"),
    (("bom", "import"), BOM + "FG-BRACKET,B,2027-01-01,,RM-STEEL,1234567890123456789012345,pcs,0,10,false\n",
     "f.csv: row 2, column qty_per: 1234567890123456789012345 is out of range (allowed: above 0 to 1,000,000)"),
    (("ledger", "import", "items"), ITEMS + "X" * 300 + ",name,pcs,raw\n",
     "f.csv: row 2, column code: code longer than 64 characters (300)"),
    (("routing", "import", "work-centers"), WORK_CENTERS + "WC-NEW,New,1,1,1,CC-1," + "M" * 65 + ",\n",
     "f.csv: row 2, column machines: code 'MMMMMMMMMMMMMMMMMMMMMMMM'... is 65 characters long (at most 64)"),
    (("routing", "import", "work-centers"), WORK_CENTERS + "WC-NEW,New,1e3,1,1,CC-1,,\n",
     "f.csv: row 2, column labor_rate: '1e3' is not a decimal number"),
])
def test_oversized_csv_values_are_refused(engine: Engine, db_url: str, example_plant: Path, tmp_path: Path,
                                          command: tuple[str, ...], content: str, message: str) -> None:
    load_plant(engine, example_plant)
    before = ledger_state(db_url)
    path = tmp_path / "f.csv"
    path.write_text(content, encoding="utf-8")
    code, _, err = cli(db_url, *command, str(path))
    assert code == 1
    assert message in err
    assert "Traceback" not in err
    assert ledger_state(db_url) == before


@pytest.mark.parametrize(("args", "message"), [
    (("wo", "release", "FG-BRACKET", "ten", "--id", "WO-9"), "error: quantity must be a number, got 'ten'"),
    (("wo", "release", "FG-BRACKET", "1e30", "--id", "WO-9"),
     "error: quantity: 1.000000e+30 is out of range (allowed: above 0 to 1,000,000,000)"),
    (("ledger", "receive", "RM-STEEL", "1e30", "--to", "STORES", "--unit-cost", "1"),
     "error: qty: 1.000000e+30 is out of range (allowed: 0 to 1,000,000,000)"),
    (("ledger", "receive", "RM-STEEL", "1", "--to", "STORES", "--unit-cost", "NaN"),
     "error: unit cost must be a number, got 'NaN'"),
    (("ledger", "issue", "R" * 300, "1", "--from", "STORES"), "item 'RRRRRRRRRRRRRRRRRRRRRRRR'... is 300 characters "
                                                              "long (at most 64)"),
    (("ledger", "adjust", "RM-STEEL", "--location", "STORES", "--reason", "x", "--delta", "-1e20"),
     "error: delta: -100000000000000000000 is out of range (allowed: -1,000,000,000 to 1,000,000,000)"),
])
def test_oversized_command_arguments_are_refused(engine: Engine, db_url: str, example_plant: Path,
                                                 args: tuple[str, ...], message: str) -> None:
    load_plant(engine, example_plant)
    before = ledger_state(db_url)
    code, _, err = cli(db_url, *args)
    assert code == 1
    assert message in err
    assert ledger_state(db_url) == before
