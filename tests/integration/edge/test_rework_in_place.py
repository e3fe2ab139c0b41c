"""Rework in place: an operation sends rework back to itself (repair at the same station); the repaired units
cost what they carried plus the repair, and never consume components again (SQLite and PostgreSQL, to the cent)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from sqlalchemy.engine import Engine

from tests.integration.wip_costing.plant import load_plant

from .helpers import cli


def _event(event_id: str, operation: int, **fields: object) -> str:
    return json.dumps({"event_id": event_id, "work_order": "WO-1", "operation": operation, "provenance": "scan",
                       "source_time": "2026-11-22T11:00:00Z", **fields})


def test_an_operation_repairs_its_own_rework(engine: Engine, db_url: str, example_plant: Path,
                                             tmp_path: Path) -> None:
    plant = tmp_path / "plant"
    shutil.copytree(example_plant, plant)  # the whole plant, sub-folders (the second product) included
    ops = plant / "operations.csv"
    ops.write_text(ops.read_text().replace("100,20,Visual", "100,30,Visual"))  # op 30 repairs its own rework
    load_plant(engine, plant)
    assert cli(db_url, "wo", "release", "FG-BRACKET", "10", "--id", "WO-1", "--date", "2026-11-22")[0] == 0
    first_two = (example_plant / "events.jsonl").read_text().splitlines()[:2]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join([*first_two, _event("A-1", 30, good=5, rework=1), _event("A-2", 30, good=1)]) + "\n")
    code, out, _ = cli(db_url, "events", "apply", str(events))
    assert code == 0, out
    view = json.loads(cli(db_url, "wo", "show", "WO-1", "--json")[1])
    op30 = view["operations"][2]
    # 6 of the 8 units at 8.57 (51.42) + bolts for 6 first-pass units 2.40 + labor 18 min 10.80 + energy 0.12
    # = 64.74: 5 good to FG at 53.95, 1 back to op 30's rework pool at 10.79; its repair adds labor 1.80 and
    # energy 0.02 (no bolts: a reworked unit never consumes components again) and it leaves at 12.61.
    assert (op30["received"], op30["completed_good"], op30["reworked"], op30["waiting"]) == ("9", "6", "1", "2")
    assert op30["first_pass"]["value"] == "17.14" and op30["rework"]["value"] == "0.00"
    assert json.loads(cli(db_url, "wip", "value", "--json")[1])["total"] == "17.14"
    rows = json.loads(cli(db_url, "ledger", "onhand", "--json")[1])["rows"]
    onhand = {r["item"]: (r["qty"], r["value"]) for r in rows}
    assert onhand["FG-BRACKET"] == ("6", "66.56")
    assert onhand["RM-BOLT"] == ("476", "47.60")
    assert cli(db_url, "ledger", "check")[0] == 0
