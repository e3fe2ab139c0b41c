"""Backflushed component quantities keep their unit's decimals: "one bar makes two parts" (qty_per 0.5 pcs) issues
whole bars by cumulative rounding up — the first part takes a bar, the second none — so the ledger never holds
half a piece and the order is never issued less than its exact need, nor more than one step above it (SQLite and
PostgreSQL)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy.engine import Engine

from tests.integration.wip_costing.plant import load_plant

from .helpers import cli


def _event(event_id: str, good: int, operation: int = 10) -> str:
    return json.dumps({"event_id": event_id, "work_order": "WO-1", "operation": operation, "good": good,
                       "provenance": "scan", "source_time": "2026-11-22T08:00:00Z"})


def _steel(db_url: str) -> tuple[str, str]:
    [row] = json.loads(cli(db_url, "ledger", "onhand", "RM-STEEL", "--json")[1])["rows"]
    return row["qty"], row["value"]


def test_one_bar_makes_two_parts(engine: Engine, db_url: str, example_plant: Path, tmp_path: Path) -> None:
    plant = tmp_path / "plant"
    shutil.copytree(example_plant, plant)
    bom = plant / "bom.csv"
    bom.write_text(bom.read_text().replace("RM-STEEL,1,pcs", "RM-STEEL,0.5,pcs"))
    load_plant(engine, plant)
    assert cli(db_url, "wo", "release", "FG-BRACKET", "7", "--id", "WO-1", "--date", "2026-11-22")[0] == 0
    events = tmp_path / "events.jsonl"
    issued = []
    for n, good in enumerate((1, 1, 3, 2), start=1):  # 1, 2, 5, 7 parts done: ceil(0.5 x done) = 1, 1, 3, 4 bars
        events.write_text(_event(f"E-{n}", good) + "\n")
        code, out, err = cli(db_url, "events", "apply", str(events))
        assert (code, out) == (0, f"applied E-{n}\n"), err
        issued.append(_steel(db_url))
    assert issued == [("99", "396.00"), ("99", "396.00"), ("97", "388.00"), ("96", "384.00")]
    moves = [line.split("\t") for line in cli(db_url, "ledger", "moves", "RM-STEEL")[1].splitlines()]
    assert [f[4] for f in moves if f[2] == "issue"] == ["1", "2", "1"]  # no move for the second part
    view = json.loads(cli(db_url, "wo", "show", "WO-1", "--json")[1])
    assert [(m["item"], m["qty"], m["value"]) for m in view["materials"] if m["item"] == "RM-STEEL"] == [
        ("RM-STEEL", "4", "16.00")]
    assert cli(db_url, "ledger", "check")[0] == 0
