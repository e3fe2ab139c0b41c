"""Large files stream in chunks on both databases (no parameter limits), and a bad row anywhere still refuses the
whole file naming its row and column (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .helpers import cli, ledger_state

ROWS = 25_000  # past SQLite's old 32,766-parameter statements and over two staging chunks


def _files(folder: Path, rows: int, bad_row: int | None = None) -> tuple[Path, Path]:
    items, balances = folder / "items.csv", folder / "balances.csv"
    with items.open("w") as f:
        f.write("code,name,uom,kind\n")
        f.writelines(f"IT-{n:07d},Item {n},pcs,raw\n" for n in range(rows))
    with balances.open("w") as f:
        f.write("item,location,lot,qty,unit_cost\n")
        for n in range(rows):
            qty = "1.5" if n + 2 == bad_row else str(n % 7 + 1)
            f.write(f"IT-{n:07d},STORES,{'L-1' if n % 2 else ''},{qty},2.50\n")
    return items, balances


def _run(db_url: str, folder: Path, rows: int) -> None:
    locations = folder / "locations.csv"
    locations.write_text("code,name,kind\nSTORES,Stores,stores\n")
    assert cli(db_url, "ledger", "import", "locations", str(locations))[0] == 0
    items, balances = _files(folder, rows)
    assert cli(db_url, "ledger", "import", "items", str(items))[1] == f"items from items.csv: {rows} imported, 0 " \
                                                                       "already present\n"
    (folder / "bad").mkdir()
    _, bad = _files(folder / "bad", rows, bad_row=rows)
    before = ledger_state(db_url)
    code, _, err = cli(db_url, "ledger", "import", "balances", str(bad))
    assert code == 1
    assert err == (f"error: balances.csv: 1 problem(s), nothing imported:\n  balances.csv: row {rows}, column qty: "
                   f"1.5 is not a whole number of pcs (item IT-{rows - 2:07d})\n")
    assert ledger_state(db_url) == before
    code, out, err = cli(db_url, "ledger", "import", "balances", str(balances))
    assert (code, out) == (0, f"balances from balances.csv: {rows} imported, 0 already present\n"), err
    assert cli(db_url, "ledger", "check")[0] == 0
    expected = sum(n % 7 + 1 for n in range(rows))
    rows_json = json.loads(cli(db_url, "ledger", "onhand", "--json")[1])["rows"]
    assert (len(rows_json), sum(int(r["qty"]) for r in rows_json)) == (rows, expected)


def test_a_large_file_imports_and_a_bad_last_row_refuses_it(db_url: str, tmp_path: Path) -> None:
    _run(db_url, tmp_path, ROWS)


@pytest.mark.slow
def test_a_hundred_thousand_rows(db_url: str, tmp_path: Path) -> None:
    _run(db_url, tmp_path, 100_000)
