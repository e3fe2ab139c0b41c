"""No as-of view ever shows negative stock: a move dated in the past is checked at every later moment and refused
naming the moment and the quantity; exit 1, nothing written (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.engine import Engine

from .helpers import cli, ledger_state


def test_a_back_dated_issue_that_would_go_negative_later_is_refused(db_url: str, example_plant: Path) -> None:
    for kind in ("items", "locations"):
        assert cli(db_url, "ledger", "import", kind, str(example_plant / f"{kind}.csv"))[0] == 0
    ledger = ("ledger",)
    assert cli(db_url, *ledger, "receive", "RM-STEEL", "10", "--to", "STORES", "--unit-cost", "4", "--date",
               "2026-11-01")[0] == 0
    assert cli(db_url, *ledger, "issue", "RM-STEEL", "8", "--from", "STORES", "--date", "2026-11-10")[0] == 0
    assert cli(db_url, *ledger, "receive", "RM-STEEL", "10", "--to", "STORES", "--unit-cost", "4", "--date",
               "2026-11-20")[0] == 0
    before = ledger_state(db_url)
    code, _, err = cli(db_url, *ledger, "issue", "RM-STEEL", "3", "--from", "STORES", "--date", "2026-11-05")
    assert (code, err) == (1, "error: insufficient stock of RM-STEEL at STORES as of 2026-11-10T00:00:00+00:00: a "
                              "move dated 2026-11-05T00:00:00+00:00 would leave -1 then (stock is never negative at "
                              "any moment)\n")
    code, _, err = cli(db_url, *ledger, "issue", "RM-STEEL", "1", "--from", "STORES", "--date", "2020-01-01")
    assert (code, err) == (1, "error: insufficient stock of RM-STEEL at STORES as of 2020-01-01T00:00:00+00:00: a "
                              "move dated 2020-01-01T00:00:00+00:00 would leave -1 then (stock is never negative at "
                              "any moment)\n")
    code, _, err = cli(db_url, *ledger, "transfer", "RM-STEEL", "2", "--from", "STORES", "--to", "FG", "--date",
                       "2026-11-09")
    assert code == 0, err  # 2 of the 10 before the 10th, then 0 left after the issue of 8: fine
    assert cli(db_url, *ledger, "issue", "RM-STEEL", "1", "--from", "STORES", "--date", "2026-11-09")[0] == 1
    before = ledger_state(db_url)
    assert ledger_state(db_url) == before
    for day in ("2020-01-01", "2026-11-01", "2026-11-05", "2026-11-09", "2026-11-10", "2026-12-31"):
        rows = json.loads(cli(db_url, *ledger, "onhand", "--as-of", day, "--json")[1])["rows"]
        assert all(not r["qty"].startswith("-") for r in rows), (day, rows)


def test_a_late_event_that_would_empty_stock_in_the_past_is_rejected(engine: Engine, db_url: str,
                                                                     example_plant: Path, tmp_path: Path) -> None:
    from tests.integration.wip_costing.plant import load_plant

    load_plant(engine, example_plant)
    for order in ("WO-1", "WO-2"):
        assert cli(db_url, "wo", "release", "FG-BRACKET", "10", "--id", order, "--date", "2026-11-22")[0] == 0
    first = (example_plant / "events.jsonl").read_text().splitlines()[0]  # WO-1 op 10, 10 steel at 08:00
    events = tmp_path / "events.jsonl"
    events.write_text(first + "\n")
    assert cli(db_url, "events", "apply", str(events))[0] == 0
    assert cli(db_url, "ledger", "issue", "RM-STEEL", "85", "--from", "STORES", "--date", "2026-11-23")[0] == 0
    assert cli(db_url, "ledger", "receive", "RM-STEEL", "100", "--to", "STORES", "--unit-cost", "4", "--date",
               "2026-11-24")[0] == 0
    before = ledger_state(db_url)
    late = {"event_id": "LATE-1", "work_order": "WO-2", "operation": 10, "good": 10, "provenance": "manual",
            "source_time": "2026-11-22T07:00:00Z"}
    events.write_text(json.dumps(late) + "\n")
    code, out, _ = cli(db_url, "events", "apply", str(events))
    assert (code, out) == (1, "rejected LATE-1: insufficient stock of RM-STEEL at STORES as of "
                              "2026-11-23T00:00:00+00:00: a move dated 2026-11-22T07:00:00+00:00 would leave -5 then "
                              "(stock is never negative at any moment)\n")
    after = ledger_state(db_url)
    assert (after["check"], after["onhand"]) == (before["check"], before["onhand"])
    events.write_text(json.dumps({**late, "event_id": "LATE-2", "good": 5}) + "\n")
    assert cli(db_url, "events", "apply", str(events))[:2] == (0, "applied LATE-2\n")  # 5 fit: 0 left on the 23rd
