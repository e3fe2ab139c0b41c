"""The journal's COPY text (PostgreSQL hot path) says exactly what the row tuples (SQLite path) say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from mes_common.db import copy_text
from mes_common.provenance import Provenance
from wip_costing.costing import apply_completion
from wip_costing.journal import Account, EntryKind, JournalEntry, JournalLine
from wip_costing.journal_writer import JournalText, journal_tuples
from wip_costing.model import OrderState

from .fakes import event, example_snapshot, example_stock

D = Decimal
WHEN = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
RECORDED = datetime(2026, 11, 23, 11, 16, 37, 453282, tzinfo=UTC)


def expected(entries: list[tuple[str, JournalEntry]], move_ids: list[int]) -> list[str]:
    return ["\t".join(map(copy_text, row)) + "\n" for row in journal_tuples(entries, move_ids, RECORDED)]


def test_copy_text_matches_the_rows_for_odd_values() -> None:
    entries = [
        ("e\\1\t#1", JournalEntry(EntryKind.MATERIAL, WHEN, "e\\1\t", "WO\n1", [
            JournalLine(Account.WIP, debit=D("12.34"), work_order="WO\n1", operation=10, work_center="WC 1",
                        provenance=Provenance.SENSOR, item="RM-1", split=(D("12.34"), D(0), D(0), D(0), D(0))),
            JournalLine(Account.RM_INV, credit=D("12.34"), work_order="WO\n1", provenance=Provenance.SENSOR,
                        item="RM-1", move_index=1),
        ])),
        ("x#2", JournalEntry(EntryKind.CLOSE, WHEN.astimezone(timezone(timedelta(hours=2))), None, "WO-2", [
            JournalLine(Account.VAR_LABOR, debit=D("0.00"), credit=D("1E+1")),
            JournalLine(Account.WIP, debit=D(0), credit=D("10.00"), operation=20,
                        split=(D(0), D("2.5E+0"), D("7.50"), D("0.00"), D(0))),
            JournalLine(Account.WIP, debit=D("1E-7"), work_order="WO-3"),
            JournalLine(Account.SCRAP_LOSS, debit=D("1E+1"), split=(D("1E+1"), D(0), D(0), D(0), D(0))),
        ])),
    ]
    text = JournalText([7, 8], RECORDED)
    for key, entry in entries:
        text.add_entry(key, entry)
    assert text.lines == expected(entries, [7, 8])


def test_copy_text_matches_the_rows_for_the_worked_example() -> None:
    snap, stock = example_snapshot(), example_stock()
    state = OrderState.released(snap)
    keyed: list[tuple[str, JournalEntry]] = []
    text = JournalText(list(range(100, 200)), RECORDED)
    completions = [(10, 10, 0, 0), (20, 8, 1, 0), (30, 5, 1, 2), (20, 2, 0, 0), (30, 2, 0, 0)]
    for n, (op, good, scrap, rework) in enumerate(completions):
        ev = event(f"e{n}", op, good=good, scrap=scrap, rework=rework, kwh="5.5")
        state, entries = apply_completion(snap, state, ev, op, stock)
        keyed += [(f"e{n}#{i}", entry) for i, entry in enumerate(entries, 1)]
        text.add_event(f"e{n}", entries)
    assert text.lines == expected(keyed, list(range(100, 200)))
