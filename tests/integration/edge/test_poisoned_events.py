"""Poisoned events in a file: each is rejected with the field and its range, and stored; the good events of the
file apply; no traceback (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from tests.integration.wip_costing.plant import load_plant
from wip_costing.tables import event_problems, operation_events

from .helpers import cli, ledger_state

BASE = {"work_order": "WO-1", "operation": 20, "good": 1, "provenance": "manual",
        "source_time": "2026-11-22T10:00:00Z"}


def _event(event_id: str, **fields: object) -> str:
    return json.dumps({"event_id": event_id, **BASE, **fields})


POISON = [
    (_event("P-kwh", kwh=1e30), "rejected P-kwh: event 'P-kwh': field 'kwh': 1.000000e+30 is out of range "
                                "(allowed: 0 to 1,000,000)"),
    (_event("P-min", actual_minutes="1e30"), "rejected P-min: event 'P-min': field 'actual_minutes': "
                                             "1.000000e+30 is out of range (allowed: 0 to 1,000,000)"),
    (_event("P-good", good=10**30), "rejected P-good: event 'P-good': field 'good': 1.000000e+30 is out of range "
                                    "(allowed: 0 to 1,000,000,000)"),
    ('{"event_id": "P-nan", "work_order": "WO-1", "operation": 20, "good": NaN, "provenance": "manual", '
     '"source_time": "2026-11-22T10:00:00Z"}',
     "rejected P-nan: event 'P-nan': field 'good': 'nan' is not a finite number (allowed: 0 to 1,000,000,000)"),
    ('{"event_id": "P-inf", "work_order": "WO-1", "operation": 20, "good": 1, "kwh": Infinity, '
     '"provenance": "manual", "source_time": "2026-11-22T10:00:00Z"}',
     "rejected P-inf: event 'P-inf': field 'kwh': 'inf' is not a finite number (allowed: 0 to 1,000,000)"),
    (_event("P-type", good=[1]), "rejected P-type: event 'P-type': field 'good': [1] is not a number (allowed: 0 "
                                 "to 1,000,000,000)"),
    (_event("P-op", operation=10**12), "rejected P-op: event 'P-op': field 'operation': 1000000000000 is out of "
                                       "range (allowed: 1 to 999,999)"),
    (_event("X" * 300), "rejected -: event without an id: field 'event_id': 'XXXXXXXXXXXXXXXXXXXXXXXX'... is 300 "
                        "characters long (at most 200)"),
    (_event("P-wo", work_order="W" * 300), "rejected P-wo: event 'P-wo': field 'work_order': "
                                           "'WWWWWWWWWWWWWWWWWWWWWWWW'... is 300 characters long (at most 64)"),
    (_event("P-time", source_time="0001-01-01T00:00:00+05:00"),
     "rejected P-time: event 'P-time': field 'source_time': '0001-01-01T00:00:00+05:00' is out of range "
     "(allowed: 1970-01-01 to 2999-12-31, UTC)"),
    ("[1, 2]", "rejected -: event without an id: field '(event)': must be a JSON object, got list [1, 2]"),
    ('{"event_id": "P-broken", "good": ', "rejected -: event without an id: field '(line 14)': not JSON: "
                                          "Expecting value at column 34"),
    ("1" * 5000, "rejected -: event without an id: field '(line 15)': not JSON: Exceeds the limit (4300 digits) "
                 "for integer string conversion: value has 5000 digits; use sys.set_int_max_str_digits() to "
                 "increase the limit"),
    ("\udcff\udcfe{}", "rejected -: event without an id: field '(line 16)': not JSON: not UTF-8 (byte 0xFF at "
                        "column 1)"),
]


def test_poisoned_events_are_rejected_and_stored_and_the_good_ones_apply(
        engine: Engine, db_url: str, example_plant: Path, tmp_path: Path) -> None:
    load_plant(engine, example_plant)
    assert cli(db_url, "wo", "release", "FG-BRACKET", "10", "--id", "WO-1", "--date", "2026-11-22")[0] == 0
    good = (example_plant / "events.jsonl").read_text().splitlines()
    lines = [good[0]] + [line for line, _ in POISON[:10]] + [good[1]] + [line for line, _ in POISON[10:]] + [good[2]]
    path = tmp_path / "events.jsonl"
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8", errors="surrogateescape"))
    code, out, err = cli(db_url, "events", "apply", str(path))
    assert code == 1
    expected = (["applied LASER-1:parts:0:10"] + [message for _, message in POISON[:10]]
                + ["applied PRESS-1:parts:0:10"] + [message for _, message in POISON[10:]]
                + ["applied T-ASSY-1:WO-1:30:1"])
    assert out.splitlines() == expected
    assert err.strip() == f"{len(POISON)} of {len(lines)} events rejected or conflicting"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(event_problems)).scalar_one() == len(POISON)
        assert conn.execute(select(func.count()).select_from(operation_events)).scalar_one() == 3
    code, out, _ = cli(db_url, "wip", "value", "--json")
    assert json.loads(out)["total"] == "25.71"
    assert cli(db_url, "ledger", "check")[0] == 0


def test_a_file_of_only_poison_changes_nothing_but_the_stored_rejections(
        engine: Engine, db_url: str, example_plant: Path, tmp_path: Path) -> None:
    load_plant(engine, example_plant)
    assert cli(db_url, "wo", "release", "FG-BRACKET", "10", "--id", "WO-1", "--date", "2026-11-22")[0] == 0
    before = ledger_state(db_url)
    path = tmp_path / "poison.jsonl"
    path.write_bytes(("\n".join(line for line, _ in POISON) + "\n").encode("utf-8", errors="surrogateescape"))
    code, out, _ = cli(db_url, "events", "apply", str(path))
    assert code == 1 and len(out.splitlines()) == len(POISON)
    assert ledger_state(db_url) == before
