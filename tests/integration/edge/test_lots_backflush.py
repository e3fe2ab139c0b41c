"""Backflush from lot-controlled stock: oldest lot first (by first receipt), split across lots, each lot at its own
cost, the lot on every stock move, in the journal export, in ``wo show`` and in where-used by lot; the shortage
counts every lot; an event may name the lot (SQLite and PostgreSQL, to the cent; 25 events in one batch also go
through PostgreSQL's streamed writer)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from sqlalchemy.engine import Engine

from tests.integration.wip_costing.plant import load_plant

from .helpers import cli


def _plant_with_steel_lots(engine: Engine, db_url: str, example_plant: Path, tmp_path: Path,
                           lots: list[tuple[str, str, str, str]]) -> None:
    plant = tmp_path / "plant"
    shutil.copytree(example_plant, plant)  # the whole plant, sub-folders (the second product) included
    (plant / "balances.csv").write_text("item,location,lot,qty,unit_cost\nRM-BOLT,STORES,,500,0.10\n")
    load_plant(engine, plant)
    for lot, qty, cost, day in lots:  # received out of order: the oldest by date is not the first recorded
        code, _, err = cli(db_url, "ledger", "receive", "RM-STEEL", qty, "--to", "STORES", "--unit-cost", cost,
                           "--lot", lot, "--date", day)
        assert code == 0, err


def _event(event_id: str, order: str, **fields: object) -> str:
    return json.dumps({"event_id": event_id, "work_order": order, "operation": 10, "provenance": "scan",
                       "source_time": "2026-11-22T08:00:00Z", **fields})


def _apply(db_url: str, path: Path, *lines: str) -> tuple[int, str]:
    path.write_text("\n".join(lines) + "\n")
    code, out, _ = cli(db_url, "events", "apply", str(path))
    return code, out


def test_three_lots_oldest_first_to_the_cent(engine: Engine, db_url: str, example_plant: Path,
                                            tmp_path: Path) -> None:
    _plant_with_steel_lots(engine, db_url, example_plant, tmp_path, [
        ("L-B", "3", "4.50", "2026-11-02"), ("L-A", "4", "4.00", "2026-11-01"), ("L-C", "5", "5.10", "2026-11-03")])
    for order, qty in (("WO-1", "10"), ("WO-2", "5")):
        assert cli(db_url, "wo", "release", "FG-BRACKET", qty, "--id", order, "--date", "2026-11-22")[0] == 0
    events = tmp_path / "events.jsonl"
    assert _apply(db_url, events, _event("E-1", "WO-1", good=10, kwh="5.5")) == (0, "applied E-1\n")
    # 10 steel: L-A 4 x 4.00 = 16.00, L-B 3 x 4.50 = 13.50, L-C 3 of 5 worth 25.50 = 15.30 -> 44.80;
    # + labor 10.00, machine 20.00, energy 1.10 = 75.90 in WIP.
    assert json.loads(cli(db_url, "wip", "value", "--json")[1])["total"] == "75.90"
    view = json.loads(cli(db_url, "wo", "show", "WO-1", "--json")[1])
    assert view["materials"] == [
        {"item": "RM-STEEL", "lot": "L-A", "qty": "4", "value": "16.00"},
        {"item": "RM-STEEL", "lot": "L-B", "qty": "3", "value": "13.50"},
        {"item": "RM-STEEL", "lot": "L-C", "qty": "3", "value": "15.30"}]
    assert "issued 3 RM-STEEL lot L-C value 15.30" in cli(db_url, "wo", "show", "WO-1")[1]
    steel = json.loads(cli(db_url, "ledger", "onhand", "RM-STEEL", "--json")[1])["rows"]
    assert [(r["lot"], r["qty"], r["value"]) for r in steel] == [("L-C", "2", "10.20")]

    # The shortage counts every lot; nothing is written.
    code, out = _apply(db_url, events, _event("E-2", "WO-2", good=5))
    assert (code, out) == (1, "rejected E-2: insufficient stock of RM-STEEL at STORES: requested 5, available 2 "
                              "(by lot: L-C 2)\n")
    # The event names the lot: only that lot.
    assert _apply(db_url, events, _event("E-3", "WO-2", good=2, lot="L-C")) == (0, "applied E-3\n")
    assert json.loads(cli(db_url, "ledger", "onhand", "RM-STEEL", "--json")[1])["rows"] == []

    assert json.loads(cli(db_url, "ledger", "lot-usage", "RM-STEEL", "L-C", "--json")[1])["rows"] == [
        {"work_order": "WO-1", "qty": "3", "value": "15.30", "first": "2026-11-22T08:00:00+00:00",
         "last": "2026-11-22T08:00:00+00:00"},
        {"work_order": "WO-2", "qty": "2", "value": "10.20", "first": "2026-11-22T08:00:00+00:00",
         "last": "2026-11-22T08:00:00+00:00"}]
    assert cli(db_url, "ledger", "lot-usage", "RM-STEEL", "L-Z")[1] == "no work order consumed lot L-Z of RM-STEEL\n"
    export = tmp_path / "journal.csv"
    assert cli(db_url, "journal", "export", "--from", "2026-11-22", "--to", "2026-11-22", str(export))[0] == 0
    with export.open() as f:
        credits = [(r["work_order"], r["lot"], r["credit"]) for r in csv.DictReader(f) if r["account"] == "RM-INV"]
    assert credits == [("WO-1", "L-A", "16.00"), ("WO-1", "L-B", "13.50"), ("WO-1", "L-C", "15.30"),
                       ("WO-2", "L-C", "10.20")]
    assert cli(db_url, "ledger", "check")[0] == 0


def test_a_batch_of_25_events_splits_across_lots(engine: Engine, db_url: str, example_plant: Path,
                                                 tmp_path: Path) -> None:
    _plant_with_steel_lots(engine, db_url, example_plant, tmp_path, [
        ("L-A", "10", "4.00", "2026-11-01"), ("L-B", "10", "4.50", "2026-11-02"), ("L-C", "10", "5.10", "2026-11-03")])
    assert cli(db_url, "wo", "release", "FG-BRACKET", "25", "--id", "WO-1", "--date", "2026-11-22")[0] == 0
    code, out = _apply(db_url, tmp_path / "e.jsonl", *(_event(f"E-{n}", "WO-1", good=1) for n in range(25)))
    assert code == 0, out
    usage = {lot: json.loads(cli(db_url, "ledger", "lot-usage", "RM-STEEL", lot, "--json")[1])["rows"]
             for lot in ("L-A", "L-B", "L-C")}
    assert {lot: [(r["qty"], r["value"]) for r in rows] for lot, rows in usage.items()} == {
        "L-A": [("10", "40.00")], "L-B": [("10", "45.00")], "L-C": [("5", "25.50")]}
    steel = json.loads(cli(db_url, "ledger", "onhand", "RM-STEEL", "--json")[1])["rows"]
    assert [(r["lot"], r["qty"], r["value"]) for r in steel] == [("L-C", "5", "25.50")]
    assert cli(db_url, "ledger", "check")[0] == 0


def _issue_moves(db_url: str, lot: str) -> list[int]:
    """Ids of the issue moves of RM-STEEL from ``lot``, oldest first (``ledger moves``)."""
    lines = [line.split("\t") for line in cli(db_url, "ledger", "moves", "RM-STEEL")[1].splitlines()]
    return [int(f[0]) for f in lines if f[2] == "issue" and f[3] == f"RM-STEEL lot {lot}"]


def test_an_event_naming_a_lot_no_component_holds_is_rejected(engine: Engine, db_url: str, example_plant: Path,
                                                              tmp_path: Path) -> None:
    from .helpers import ledger_state

    _plant_with_steel_lots(engine, db_url, example_plant, tmp_path, [
        ("L-A", "4", "4.00", "2026-11-01"), ("L-B", "6", "4.50", "2026-11-02")])
    assert cli(db_url, "wo", "release", "FG-BRACKET", "10", "--id", "WO-1", "--date", "2026-11-22")[0] == 0
    before = ledger_state(db_url)
    events = tmp_path / "events.jsonl"
    # A lot of another item, or no lot at all: never the silent oldest-first fallback.
    assert _apply(db_url, events, _event("E-1", "WO-1", good=2, lot="L-Z")) == (
        1, "rejected E-1: event E-1: lot L-Z is not held at STORES by any component of work order WO-1 operation "
           "10 (components: RM-STEEL)\n")
    assert ledger_state(db_url) == before
    # The named lot that a component holds: only that lot.
    assert _apply(db_url, events, _event("E-2", "WO-1", good=2, lot="L-B")) == (0, "applied E-2\n")
    steel = json.loads(cli(db_url, "ledger", "onhand", "RM-STEEL", "--json")[1])["rows"]
    assert [(r["lot"], r["qty"]) for r in steel] == [("L-A", "4"), ("L-B", "4")]


def test_lot_usage_nets_reversed_issues(engine: Engine, db_url: str, example_plant: Path, tmp_path: Path) -> None:
    _plant_with_steel_lots(engine, db_url, example_plant, tmp_path, [
        ("L-A", "4", "4.00", "2026-11-01"), ("L-C", "10", "5.10", "2026-11-03")])
    for order, qty in (("WO-1", "6"), ("WO-2", "2")):
        assert cli(db_url, "wo", "release", "FG-BRACKET", qty, "--id", order, "--date", "2026-11-22")[0] == 0
    events = tmp_path / "events.jsonl"
    # WO-1: L-A 4 and L-C 2; WO-2: L-C 1, then L-C 1 again.
    assert _apply(db_url, events, _event("E-1", "WO-1", good=6), _event("E-2", "WO-2", good=1),
                  _event("E-3", "WO-2", good=1))[0] == 0
    usage = json.loads(cli(db_url, "ledger", "lot-usage", "RM-STEEL", "L-C", "--json")[1])["rows"]
    assert [(r["work_order"], r["qty"], r["value"]) for r in usage] == [("WO-1", "2", "10.20"), ("WO-2", "2", "10.20")]
    wo1_lc, wo2_first, wo2_second = _issue_moves(db_url, "L-C")
    for move in (wo1_lc, wo2_second):
        code, _, err = cli(db_url, "ledger", "reverse", str(move), "--reason", "returned to stores")
        assert code == 0, err
    # WO-1's only L-C issue was reversed: it no longer consumed L-C; WO-2 consumed one of its two.
    usage = json.loads(cli(db_url, "ledger", "lot-usage", "RM-STEEL", "L-C", "--json")[1])["rows"]
    assert usage == [{"work_order": "WO-2", "qty": "1", "value": "5.10", "first": "2026-11-22T08:00:00+00:00",
                      "last": "2026-11-22T08:00:00+00:00"}]
    assert cli(db_url, "ledger", "lot-usage", "RM-STEEL", "L-A")[1].startswith("WO-1\t4\t16.00\t")
    assert wo2_first < wo2_second
    assert cli(db_url, "ledger", "check")[0] == 0
