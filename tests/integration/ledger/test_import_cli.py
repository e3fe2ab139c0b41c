"""CSV import and the ``mes-bridge ledger`` commands on SQLite and PostgreSQL (CliRunner, real database)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from ledger import importer
from ledger import queries as ledger_queries
from ledger import repository as repo
from ledger.model import LocationKind
from ledger.tables import items, locations, stock_balances, stock_moves
from mes_bridge.cli import app
from mes_common.csv_report import CsvImportError

runner = CliRunner()


def cli(db_url: str, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"MES_BRIDGE_DATABASE_URL": db_url})
    return result.exit_code, result.stdout, result.stderr


def counts(engine: Engine) -> tuple[int, int, int]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(select(func.count()).select_from(t)).scalar_one() for t in (items, locations, stock_moves)
        )  # type: ignore[return-value]


def test_worked_example_import_and_onhand_json(engine: Engine, db_url: str, example_plant: Path) -> None:
    for kind in ("items", "locations", "balances"):
        code, out, err = cli(db_url, "ledger", "import", kind, str(example_plant / f"{kind}.csv"), "--actor", "ann")
        assert code == 0, err
    assert "balances from balances.csv: 2 imported, 0 already present" in out
    code, out, _ = cli(db_url, "ledger", "onhand", "--json")
    assert code == 0
    assert json.loads(out) == {
        "rows": [
            {"item": "RM-BOLT", "location": "STORES", "lot": "", "qty": "500", "value": "50.00"},
            {"item": "RM-STEEL", "location": "STORES", "lot": "", "qty": "100", "value": "400.00"},
        ]
    }
    code, out, _ = cli(db_url, "ledger", "onhand", "RM-STEEL")
    assert out.splitlines() == ["item      location  lot  qty   value", "RM-STEEL  STORES         100  400.00"]
    code, out, _ = cli(db_url, "ledger", "check")
    assert (code, out.strip()) == (0, "ledger check: ok")
    with engine.connect() as conn:
        assert repo.default_location(conn, LocationKind.FINISHED) == "FG"
        created_by = conn.execute(select(items.c.created_by, items.c.source).limit(1)).one()
        assert tuple(created_by) == ("ann", "items.csv")


def test_reimporting_the_same_files_changes_nothing(engine: Engine, db_url: str, example_plant: Path) -> None:
    for _ in range(2):
        for kind in ("items", "locations", "balances"):
            code, out, err = cli(db_url, "ledger", "import", kind, str(example_plant / f"{kind}.csv"))
            assert code == 0, err
    assert "balances from balances.csv: 0 imported, 2 already present" in out
    assert counts(engine) == (3, 5, 2)


def test_nbsp_in_location_code_is_refused_and_nothing_written(engine: Engine, db_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "locations.csv"
    bad.write_text("code,name,kind\nSTORES,Stores,stores\nFG\u00a0,Finished goods,finished\n", encoding="utf-8")
    code, _, err = cli(db_url, "ledger", "import", "locations", str(bad))
    assert code == 1
    assert "locations.csv: row 3, column code: U+00A0 NO-BREAK SPACE at position 3" in err
    assert counts(engine) == (0, 0, 0)


def test_balances_with_unknown_codes_report_every_row(engine: Engine, db_url: str, example_plant: Path,
                                                     tmp_path: Path) -> None:  # fmt: skip
    for kind in ("items", "locations"):
        assert cli(db_url, "ledger", "import", kind, str(example_plant / f"{kind}.csv"))[0] == 0
    bad = tmp_path / "balances.csv"
    bad.write_text(
        "item,location,lot,qty,unit_cost\n"
        "RM-STEEL,STORES,,100,4.00\n"
        "RM-C\u041ePPER,STORES,,1,1\n"
        "RM-BOLT,NOWHERE,,5,0.10\n"
        "RM-BOLT,STORES,,-5,0.10\n",
        encoding="utf-8",
    )
    code, _, err = cli(db_url, "ledger", "import", "balances", str(bad))
    assert code == 1
    assert "3 problem(s), nothing imported" in err
    assert "row 3, column item: U+041E CYRILLIC CAPITAL LETTER O at position 5" in err
    assert "row 4, column location: unknown location NOWHERE" in err
    assert "row 5, column qty: -5 must be greater than zero" in err
    assert counts(engine)[2] == 0


def test_master_data_change_is_refused_by_import(engine: Engine, example_plant: Path) -> None:
    with engine.begin() as conn:
        importer.import_items(conn, example_plant / "items.csv", actor="t")
    changed = b"code,name,uom,kind\nRM-BOLT,Bolt M8x25,pcs,raw\n"
    with pytest.raises(CsvImportError, match="item RM-BOLT already exists with other data"), engine.begin() as conn:
        importer.import_items(conn, changed, actor="t", name="items2.csv")


def test_manual_moves_reverse_and_as_of(engine: Engine, db_url: str, example_plant: Path) -> None:
    for kind in ("items", "locations"):
        assert cli(db_url, "ledger", "import", kind, str(example_plant / f"{kind}.csv"))[0] == 0
    ok = [
        ("receive", "RM-STEEL", "10", "--to", "STORES", "--unit-cost", "4", "--date", "2026-11-20"),
        ("issue", "RM-STEEL", "3", "--from", "STORES", "--date", "2026-11-21T10:00:00Z", "--key", "k1"),
        ("issue", "RM-STEEL", "3", "--from", "STORES", "--date", "2026-11-21T10:00:00Z", "--key", "k1"),
        ("transfer", "RM-STEEL", "2", "--from", "STORES", "--to", "FG"),
        ("adjust", "RM-STEEL", "--location", "STORES", "--reason", "count 2026-11", "--delta", "-1"),
        ("receive", "RM-STEEL", "1", "--to", "QUAR", "--quarantine", "--value", "4.00"),
        ("inspect", "RM-STEEL", "1", "--from", "QUAR", "--accept-to", "STORES"),
    ]
    outputs = []
    for args in ok:
        code, out, err = cli(db_url, "ledger", *args, "--actor", "ann")
        assert code == 0, (args, err)
        outputs.append(out)
    assert outputs[1] == outputs[2]  # the retry returned the original move
    code, _, err = cli(db_url, "ledger", "issue", "RM-STEEL", "99", "--from", "STORES")
    assert code == 1 and "requested 99, available 5" in err
    code, out, _ = cli(db_url, "ledger", "reverse", "2", "--reason", "wrong order", "--actor", "bob")
    assert code == 0 and out.startswith("move 7: reversal 3 RM-STEEL - -> STORES value 12.00")
    code, _, err = cli(db_url, "ledger", "reverse", "2", "--reason", "again")
    assert code == 1 and "already reversed by move 7" in err
    code, out, _ = cli(db_url, "ledger", "onhand", "RM-STEEL", "--as-of", "2026-11-20", "--json")
    assert json.loads(out)["rows"] == [
        {"item": "RM-STEEL", "location": "STORES", "lot": "", "qty": "10", "value": "40.00"}]  # fmt: skip
    code, out, _ = cli(db_url, "ledger", "onhand", "--location", "STORES", "--json")
    assert [(r["qty"], r["value"]) for r in json.loads(out)["rows"]] == [("8", "32.00")]
    assert cli(db_url, "ledger", "check")[0] == 0
    code, out, _ = cli(db_url, "ledger", "moves", "RM-STEEL")
    assert len(out.splitlines()) == 7 and "\tbob\tmanual\twrong order" in out.splitlines()[-1]
    count = ("ledger", "adjust", "RM-STEEL", "--location", "STORES", "--reason", "count")
    code, _, err = cli(
        db_url, "ledger", "adjust", "RM-COPPER", "--location", "STORES", "--reason", "x", "--counted", "1"
    )
    assert (code, err) == (1, "error: unknown item 'RM-COPPER'\n")
    assert cli(db_url, *count, "--counted", "8")[1] == "no adjustment: RM-STEEL at STORES is as counted\n"
    code, _, err = cli(db_url, *count, "--counted", "6.5")  # RM-STEEL is counted in pcs: whole numbers
    assert (code, err) == (1, "error: adjustment of RM-STEEL (manual:" + err.split("(manual:")[1].split(")")[0]
                           + "): 1.5 is not a whole number of pcs\n")
    code, out, _ = cli(db_url, *count, "--counted", "6")
    assert out.startswith("move 8: adjustment 2 RM-STEEL STORES -> - value 8.00")


def test_check_exits_non_zero_on_violation(engine: Engine, db_url: str, example_plant: Path) -> None:
    for kind in ("items", "locations", "balances"):
        assert cli(db_url, "ledger", "import", kind, str(example_plant / f"{kind}.csv"))[0] == 0
    with engine.begin() as conn:
        conn.execute(update(stock_balances).where(stock_balances.c.item == "RM-BOLT").values(qty=Decimal(1)))
    code, _, err = cli(db_url, "ledger", "check")
    assert code == 1
    assert "balance of RM-BOLT at STORES is 1" in err and "1 violation(s)" in err


def test_serial_numbers_through_the_cli(engine: Engine, db_url: str, example_plant: Path) -> None:
    for kind in ("items", "locations"):
        assert cli(db_url, "ledger", "import", kind, str(example_plant / f"{kind}.csv"))[0] == 0
    base = ("ledger", "receive", "FG-BRACKET", "2", "--to", "FG", "--value", "21.58")
    assert cli(db_url, *base, "--serial", "SN-1", "--serial", "SN-2")[0] == 0
    code, _, err = cli(db_url, *base, "--serial", "SN-2", "--serial", "SN-3")
    assert code == 1 and "serial SN-2 of FG-BRACKET is at FG, expected not in stock" in err
    code, _, err = cli(db_url, "ledger", "issue", "FG-BRACKET", "2", "--from", "FG", "--serial", "SN-1")
    assert code == 1 and "1 serial numbers for a quantity of 2" in err
    assert cli(db_url, "ledger", "issue", "FG-BRACKET", "1", "--from", "FG", "--serial", "SN-1")[0] == 0
    code, out, _ = cli(db_url, "ledger", "serials", "FG-BRACKET")
    assert out == "SN-2\tFG\t\n"


def test_opening_balances_dated_with_date_option(engine: Engine, db_url: str, example_plant: Path) -> None:
    for kind in ("items", "locations"):
        assert cli(db_url, "ledger", "import", kind, str(example_plant / f"{kind}.csv"))[0] == 0
    balances = str(example_plant / "balances.csv")
    assert cli(db_url, "ledger", "import", "balances", balances, "--date", "2026-01-01", "--actor", "ann")[0] == 0
    assert json.loads(cli(db_url, "ledger", "onhand", "--as-of", "2025-12-31", "--json")[1]) == {"rows": []}
    rows = json.loads(cli(db_url, "ledger", "onhand", "--as-of", "2026-01-01T00:00:00Z", "--json")[1])["rows"]
    assert [(r["item"], r["qty"], r["value"]) for r in rows] == [
        ("RM-BOLT", "500", "50.00"),
        ("RM-STEEL", "100", "400.00"),
    ]
    with engine.connect() as conn:
        moves = ledger_queries.list_moves(conn)
    assert {(m.actor, m.reason, m.reference) for m in moves} == {
        ("ann", "opening balance, balances.csv row 2", "import:balances.csv"),
        ("ann", "opening balance, balances.csv row 3", "import:balances.csv"),
    }
