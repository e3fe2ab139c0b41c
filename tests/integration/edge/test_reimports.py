"""Re-imports: the same file changes nothing; a corrected balances file is refused with the difference, or posted
as a count adjustment with a reason; --dry-run says what would change (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.engine import Engine

from .helpers import cli, ledger_state


def _master(db_url: str, example_plant: Path) -> None:
    for kind in ("items", "locations"):
        assert cli(db_url, "ledger", "import", kind, str(example_plant / f"{kind}.csv"))[0] == 0


def test_balances_imported_twice_change_nothing(db_url: str, example_plant: Path) -> None:
    _master(db_url, example_plant)
    balances = str(example_plant / "balances.csv")
    assert cli(db_url, "ledger", "import", "balances", balances)[1] == \
        "balances from balances.csv: 2 imported, 0 already present\n"
    before = ledger_state(db_url)
    assert cli(db_url, "ledger", "import", "balances", balances) == (
        0, "balances from balances.csv: 0 imported, 2 already present\n", "")
    assert ledger_state(db_url) == before


def test_a_corrected_balances_file_is_refused_with_the_difference(engine: Engine, db_url: str, example_plant: Path,
                                                                  tmp_path: Path) -> None:
    _master(db_url, example_plant)
    assert cli(db_url, "ledger", "import", "balances", str(example_plant / "balances.csv"))[0] == 0
    before = ledger_state(db_url)
    corrected = tmp_path / "balances-v2.csv"
    corrected.write_text("item,location,lot,qty,unit_cost\nRM-STEEL,STORES,,90,4.00\nRM-BOLT,STORES,,500,0.12\n"
                         "FG-BRACKET,FG,,1,10\n")
    code, _, err = cli(db_url, "ledger", "import", "balances", str(corrected))
    assert code == 1
    assert err == (
        "error: balances-v2.csv: 2 problem(s), nothing imported:\n"
        "  balances-v2.csv: row 2, column qty: opening balance of RM-STEEL at STORES was imported as 100 at 4, this "
        "file says 90 (difference -10); import with --adjust --reason to post the difference as a count adjustment\n"
        "  balances-v2.csv: row 3, column unit_cost: opening balance of RM-BOLT at STORES was imported as 500 at 0.1, "
        "this file says unit cost 0.12: a re-import never revalues stock\n")
    assert ledger_state(db_url) == before

    corrected.write_text("item,location,lot,qty,unit_cost\nRM-STEEL,STORES,,90,4.00\nRM-BOLT,STORES,,500,0.10\n"
                         "FG-BRACKET,FG,,1,10\n")
    code, out, _ = cli(db_url, "ledger", "import", "balances", str(corrected), "--adjust", "--reason",
                       "recount 2026-12", "--dry-run")
    assert (code, out) == (0, "balances from balances-v2.csv: 1 imported, 1 already present, 1 adjusted (dry run: "
                              "nothing written)\n")
    assert ledger_state(db_url) == before
    code, out, _ = cli(db_url, "ledger", "import", "balances", str(corrected), "--adjust", "--reason",
                       "recount 2026-12")
    assert (code, out) == (0, "balances from balances-v2.csv: 1 imported, 1 already present, 1 adjusted\n")
    rows = json.loads(cli(db_url, "ledger", "onhand", "--json")[1])["rows"]
    assert [(r["item"], r["qty"], r["value"]) for r in rows] == [
        ("FG-BRACKET", "1", "10.00"), ("RM-BOLT", "500", "50.00"), ("RM-STEEL", "90", "360.00")]
    assert cli(db_url, "ledger", "moves", "RM-STEEL")[1].splitlines()[-1].endswith(
        "recount 2026-12 (balances-v2.csv row 2)")
    # The corrected file again: nothing left to do.
    after = ledger_state(db_url)
    assert cli(db_url, "ledger", "import", "balances", str(corrected), "--adjust", "--reason", "again")[1] == \
        "balances from balances-v2.csv: 0 imported, 3 already present\n"
    assert cli(db_url, "ledger", "import", "balances", str(corrected))[1] == \
        "balances from balances-v2.csv: 0 imported, 3 already present\n"
    assert ledger_state(db_url) == after


def test_opening_balances_come_before_the_events_by_default(db_url: str, example_plant: Path) -> None:
    _master(db_url, example_plant)
    assert cli(db_url, "ledger", "import", "balances", str(example_plant / "balances.csv"))[0] == 0
    rows = json.loads(cli(db_url, "ledger", "onhand", "RM-STEEL", "--as-of", "2026-11-22", "--json")[1])["rows"]
    assert rows == [{"item": "RM-STEEL", "location": "STORES", "lot": "", "qty": "100", "value": "400.00"}]


def test_items_reimport_says_what_it_would_change(db_url: str, example_plant: Path, tmp_path: Path) -> None:
    _master(db_url, example_plant)
    before = ledger_state(db_url)
    changed = tmp_path / "items.csv"
    changed.write_text("code,name,uom,kind\nRM-BOLT,Bolt M8x25,pcs,raw\nRM-NEW,New,kg,raw\n")
    code, _, err = cli(db_url, "ledger", "import", "items", str(changed))
    assert code == 1
    assert ("items.csv: row 2, column code: item RM-BOLT already exists with other data (name Bolt M8x20, uom pcs, "
            "kind raw); an import does not change master data") in err
    changed.write_text("code,name,uom,kind\nRM-BOLT,Bolt M8x20,pcs,raw\nRM-NEW,New,kg,raw\n")
    assert cli(db_url, "ledger", "import", "items", str(changed), "--dry-run")[1] == \
        "items from items.csv: 1 imported, 1 already present (dry run: nothing written)\n"
    assert ledger_state(db_url) == before


def test_work_center_rates_are_versioned_and_links_kept(engine: Engine, db_url: str, example_plant: Path,
                                                        tmp_path: Path) -> None:
    from tests.integration.wip_costing.plant import load_plant

    load_plant(engine, example_plant)
    same = str(example_plant / "work_centers.csv")
    assert cli(db_url, "routing", "import", "work-centers", same) == (
        0, "imported 0 work center(s): ; 3 unchanged\n", "")
    assert cli(db_url, "wo", "release", "FG-BRACKET", "10", "--id", "WO-1", "--date", "2026-11-22")[0] == 0
    dearer = tmp_path / "wc.csv"
    dearer.write_text("code,name,labor_rate,machine_rate,energy_tariff,cost_center\n"
                      "WC-LASER,Laser cutting,40.00,60.00,0.20,CC-100\n")
    code, out, err = cli(db_url, "routing", "import", "work-centers", str(dearer), "--date", "2026-12-01")
    assert code == 0, err
    assert out == ("imported 1 work center(s): WC-LASER; 0 unchanged\n"
                   "  work center WC-LASER: rates from 2026-12-01: labor 30 -> 40, machine 60, energy 0.2 (orders "
                   "released before keep theirs)\n")
    assert json.loads(cli(db_url, "bom", "rollup", "FG-BRACKET", "--as-of", "2026-11-30", "--json")[1])["total"] \
        == "10.68"
    assert json.loads(cli(db_url, "bom", "rollup", "FG-BRACKET", "--as-of", "2026-12-01", "--json")[1])["total"] \
        == "11.01"
    code, out, _ = cli(db_url, "routing", "work-centers", "--json")
    laser = next(r for r in json.loads(out)["rows"] if r["code"] == "WC-LASER")
    assert (laser["machines"], laser["terminals"]) == (["CNC-1", "LASER-1"], ["T-LASER-1"])
    assert json.loads(cli(db_url, "wo", "show", "WO-1", "--json")[1])["status"] == "released"
    again = cli(db_url, "routing", "import", "work-centers", str(dearer), "--date", "2026-12-01")
    assert again == (0, "imported 0 work center(s): ; 1 unchanged\n", "")
    other = tmp_path / "wc2.csv"
    other.write_text(dearer.read_text().replace("40.00", "45.00"))
    code, _, err = cli(db_url, "routing", "import", "work-centers", str(other), "--date", "2026-12-01")
    assert code == 1
    assert ("wc2.csv: row 1: work center WC-LASER: rates from 2026-12-01 are already labor 40, machine 60, energy "
            "0.2; a rate version is never changed: give the new rates another effective "
            "date") in err
