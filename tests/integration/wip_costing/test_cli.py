"""The ``wo``, ``events``, ``wip`` and ``journal`` commands on the worked example (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from mes_bridge.cli import app

from .plant import load_plant


def test_cli_worked_example(engine: Engine, db_url: str, example_plant: Path, tmp_path: Path) -> None:
    load_plant(engine, example_plant)
    runner = CliRunner()
    env = {"MES_BRIDGE_DATABASE_URL": db_url}

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args), env=env)
        return result.exit_code, result.output

    code, out = run("wo", "release", "FG-BRACKET", "10", "--id", "WO-1", "--date", "2026-11-22")
    assert code == 0, out
    assert "routing rev A (10@WC-LASER, 20@WC-PRESS, 30@WC-ASSY)" in out

    code, out = run("events", "apply", str(example_plant / "events.jsonl"))
    assert code == 0, out
    assert out.splitlines() == ["applied LASER-1:parts:0:10", "applied PRESS-1:parts:0:10",
                                "applied T-ASSY-1:WO-1:30:1"]

    code, out = run("wip", "value", "--json")
    assert code == 0, out
    assert json.loads(out)["total"] == "25.71"
    code, out = run("wip", "value", "--json", "--by", "work-center", "--as-of", "2026-11-22T09:30:00Z")
    assert json.loads(out) == {"as_of": "2026-11-22T09:30:00+00:00", "by": "work-center", "total": "68.56",
                               "rows": [{"work_center": "WC-ASSY", "value": "68.56", "share": "1.0000"}]}
    code, out = run("wip", "value", "--by", "element", "--json")
    elements = {r["element"]: r["value"] for r in json.loads(out)["rows"]}
    assert sum(Decimal(v) for v in elements.values()) == Decimal("25.71")
    code, out = run("wip", "value", "--by", "element")
    assert code == 0, out
    assert [line.split() for line in out.splitlines()] == [
        ["element=energy", "0.51", "1.98%"], ["element=labor", "4.80", "18.67%"],
        ["element=machine", "8.40", "32.67%"], ["element=material", "12.00", "46.67%"], ["total", "25.71"]]

    code, out = run("wo", "show", "WO-1", "--json")
    view = json.loads(out)
    assert [o["waiting"] for o in view["operations"]] == ["0", "0", "3"]
    assert view["operations"][2]["first_pass"]["value"] == "25.71"

    # Re-applying: duplicates are harmless (exit 0); a changed event is a conflict (exit 1), stored.
    code, out = run("events", "apply", str(example_plant / "events.jsonl"))
    assert code == 0 and out.count("duplicate") == 3
    changed = tmp_path / "changed.jsonl"
    first = json.loads((example_plant / "events.jsonl").read_text().splitlines()[0])
    changed.write_text(json.dumps({**first, "good": 9}) + "\nnot json\n")
    code, out = run("events", "apply", str(changed))
    assert code == 1
    assert out.splitlines()[0] == "conflict LASER-1:parts:0:10: event LASER-1:parts:0:10 was already applied with " \
                                  "different content"
    assert out.splitlines()[1].startswith("rejected -: ")
    code, out = run("events", "list", "--status", "conflict")
    assert code == 0 and "conflict LASER-1:parts:0:10" in out and "rejected" not in out
    code, out = run("events", "list", "--status", "rejected", "--json")
    assert len(json.loads(out)["rows"]) == 1

    target = tmp_path / "journal.csv"
    code, out = run("journal", "export", "--from", "2026-11-22", "--to", "2026-11-22", str(target))
    assert code == 0, out
    with target.open() as handle:
        header = handle.readline().strip()
        handle.seek(0)
        rows = list(csv.DictReader(handle))
    assert header == ("id,entry,kind,event_id,effective_at,recorded_at,account,debit,credit,work_order,operation,"
                      "work_center,provenance,item,stock_move_id,material,setup,labor,machine,energy,lot")
    assert sum(int(r["debit"].replace(".", "")) for r in rows) == sum(int(r["credit"].replace(".", "")) for r in rows)
    assert {r["account"] for r in rows} >= {"WIP", "RM-INV", "FG-INV", "SCRAP-LOSS", "ABSORBED-LABOR"}
    elements = ("material", "setup", "labor", "machine", "energy")
    for r in rows:  # WIP and SCRAP-LOSS lines carry their element split, summing to their amount
        split = sum((Decimal(r[e]) for e in elements if r[e]), Decimal(0))
        expected = Decimal(r["debit"]) + Decimal(r["credit"]) if r["account"] in ("WIP", "SCRAP-LOSS") else 0
        assert split == expected, r
    code, out = run("journal", "export", "--from", "2026-11-23", "--to", "2026-11-30", str(target))
    assert out.startswith("0 journal lines")

    code, out = run("wo", "close", "WO-1")
    assert (code, out) == (1, "error: work order WO-1 has 3 units still waiting (3 at operation 30 worth 25.71): "
                              "closing would write them off and move 25.71 to variance accounts; close it with "
                              "--force to do so\n")
    code, out = run("wo", "close", "WO-1", "--force")
    assert code == 0, out
    assert "VAR-SCRAP" in out
    code, out = run("wip", "value", "--json")
    assert json.loads(out)["total"] == "0.00"
    code, out = run("wo", "close", "WO-1")
    assert code == 1 and "already closed" in out
