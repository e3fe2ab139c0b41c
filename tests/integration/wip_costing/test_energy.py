"""Energy in kWh on the worked example: per operation and machine in ``wo show`` (text and JSON), in the WIP report.

Op 10 and op 20 were metered (5.5 and 3.0 kWh from LASER-1 and PRESS-1); op 30 was scanned at a terminal with no
meter, so it used the standard 0.1 kWh × 5 units = 0.5 kWh — what the energy cost was charged with (SPEC).
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from mes_bridge.cli import app

from .plant import load_plant


def test_energy_in_kwh_per_operation_and_machine(engine: Engine, db_url: str, example_plant: Path) -> None:
    load_plant(engine, example_plant)
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args), env={"MES_BRIDGE_DATABASE_URL": db_url})
        assert result.exit_code == 0, result.output
        return result.output

    run("wo", "release", "FG-BRACKET", "10", "--id", "WO-1", "--date", "2026-11-22")
    run("events", "apply", str(example_plant / "events.jsonl"))

    view = json.loads(run("wo", "show", "WO-1", "--json"))
    assert [o["energy"] for o in view["operations"]] == [
        {"kwh": "5.5", "metered_kwh": "5.5", "standard_kwh": "0", "by_machine": {"LASER-1": "5.5"}},
        {"kwh": "3", "metered_kwh": "3", "standard_kwh": "0", "by_machine": {"PRESS-1": "3"}},
        {"kwh": "0.5", "metered_kwh": "0", "standard_kwh": "0.5", "by_machine": {"(no machine)": "0.5"}},
    ]
    assert view["energy"] == {"kwh": "9", "metered_kwh": "8.5", "standard_kwh": "0.5",
                              "by_machine": {"(no machine)": "0.5", "LASER-1": "5.5", "PRESS-1": "3"}}

    text = run("wo", "show", "WO-1").splitlines()
    assert text[1].split()[-1] == "kWh" and [line.split()[-1] for line in text[2:5]] == ["5.5", "3", "0.5"]
    assert text[5] == "energy 9 kWh (8.5 metered, 0.5 standard); by machine: (no machine) 0.5, LASER-1 5.5, PRESS-1 3"

    report = json.loads(run("wip", "value", "--by", "operation", "--energy", "--json"))
    assert report["rows"] == [{"work_order": "WO-1", "operation": 30, "value": "25.71", "share": "1.0000",
                               "kwh": "0.5"}]
    by_order = json.loads(run("wip", "value", "--energy", "--json"))
    assert by_order["rows"][0]["kwh"] == "9"
    by_element = json.loads(run("wip", "value", "--by", "element", "--energy", "--json"))
    assert {r["element"]: r.get("kwh") for r in by_element["rows"]}["energy"] == "9"
    assert "kwh" not in json.loads(run("wip", "value", "--json"))["rows"][0]  # the contract's shape by default
    assert run("wip", "value", "--as-of", "2026-11-22T08:30:00Z", "--energy").splitlines()[0].endswith(" 5.5 kWh")
