"""Appending cost journal lines, and their COPY text.

Works inside the caller's connection and transaction. Invariants:
- Journal lines are only ever inserted.
- Lines go out in one COPY on PostgreSQL (large batches: in chunks, by ``wip_costing.batch_stream``), one
  executemany on SQLite; never row by row.
- COPY text is exact (``mes_common.db.copy_text``): amounts in fixed notation, ``\\N`` for NULL, escapes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection

from mes_common.db import copy_into, copy_statement, copy_text, copy_text_memo, insert_rows, is_postgres
from mes_common.money import fmt
from wip_costing.journal import ELEMENTS, JournalEntry
from wip_costing.tables import journal_lines

JOURNAL_COLUMNS = ("entry", "kind", "event_id", "account", "debit", "credit", "work_order", "operation",
                   "work_center", "provenance", "item", "stock_move_id", "effective_at", "recorded_at",
                   *(element.value for element in ELEMENTS))

JOURNAL_COPY = copy_statement(journal_lines, JOURNAL_COLUMNS)


def journal_tuples(entries: Sequence[tuple[str, JournalEntry]], move_ids: Sequence[int], recorded_at: datetime
                   ) -> list[tuple[Any, ...]]:
    """Rows (in ``JOURNAL_COLUMNS`` order) for ``entries``, each with its entry key; move indexes become ids."""
    rows = []
    for key, entry in entries:
        kind, event_id, order, when = entry.kind.value, entry.event_id, entry.work_order, entry.effective_at
        for line in entry.lines:
            split = (None,) * len(ELEMENTS) if line.split is None else tuple(part or None for part in line.split)
            rows.append((
                key, kind, event_id, line.account.value, line.debit, line.credit, line.work_order or order,
                line.operation, line.work_center, None if line.provenance is None else line.provenance.value,
                line.item, None if line.move_index is None else move_ids[line.move_index], when, recorded_at,
                *split,
            ))
    return rows


def insert_journal(conn: Connection, entries: Sequence[tuple[str, JournalEntry]], move_ids: Sequence[int],
                   recorded_at: datetime) -> int:
    """Append the lines of ``entries``: COPY on PostgreSQL, executemany on SQLite; returns the number of lines."""
    if not is_postgres(conn):
        rows = journal_tuples(entries, move_ids, recorded_at)
        if rows:
            insert_rows(conn, journal_lines, JOURNAL_COLUMNS, rows)
        return len(rows)
    text = JournalText(move_ids, recorded_at)
    for key, entry in entries:
        text.add_entry(key, entry)
    if text.lines:
        copy_into(conn, journal_lines, JOURNAL_COLUMNS, "".join(text.lines))
    return len(text.lines)


class JournalText:
    """Journal lines in COPY text format (``JOURNAL_COLUMNS``), accumulated in ``lines``.

    ``move_ids[i]`` is the id of move index ``i``. The hot path of a batch: per entry its own fields are formatted
    once; per line its amounts (and element split), and the rest (order, operation, work center, provenance,
    item) is looked up, as a batch repeats few combinations of them. Enum members are written with ``!s``
    (``str()``: their value, in C) rather than by ``format()``, which runs Python code for an enum.
    """

    def __init__(self, move_ids: Sequence[int], recorded_at: datetime) -> None:
        self.lines: list[str] = []
        self._move_ids = move_ids
        self._recorded = recorded_at.isoformat()
        self._t = copy_text_memo()
        self._fields: dict[tuple[Any, ...], str] = {}
        self._when: datetime | None = None
        self._tail = ""

    def add_entry(self, key: str, entry: JournalEntry) -> None:
        self._add(self._t(key), entry)

    def add_event(self, event_id: str, entries: Sequence[JournalEntry]) -> None:
        """The lines of one applied event's entries, keyed ``<event id>#1``, ``#2``, ... (as ``apply_events``)."""
        prefix = copy_text(event_id)
        for n, entry in enumerate(entries, 1):
            self._add(f"{prefix}#{n}", entry)

    def _add(self, key_text: str, entry: JournalEntry) -> None:
        move_ids, out, fields, na = self._move_ids, self.lines, self._fields, "\\N"
        head = f"{key_text}\t{entry.kind!s}\t{self._t(entry.event_id)}\t"
        if entry.effective_at is not self._when:  # an event's entries share their time: format it once
            self._when = entry.effective_at
            self._tail = f"\t{entry.effective_at.isoformat()}\t{self._recorded}\t"
        tail = self._tail
        order = entry.work_order
        # Both sides of a transfer share their split (one tuple): formatted once.
        last_split: Any = None
        split_text = _NO_SPLIT
        for account, debit, credit, line_order, operation, work_center, provenance, item, index, split in entry.lines:
            key = (line_order or order, operation, work_center, provenance, item)
            middle = fields.get(key)
            if middle is None:
                middle = fields[key] = self._middle(key)
            amounts = f"{debit!s}\t{credit!s}"  # str() of each: fixed notation, unless it chose an exponent
            if "E" in amounts:
                amounts = f"{fmt(debit)}\t{fmt(credit)}"
            if split is not last_split:
                last_split, split_text = split, _NO_SPLIT if split is None else _split_text(split)
            out.append(f"{head}{account!s}\t{amounts}{middle}"
                       f"{na if index is None else move_ids[index]}{tail}{split_text}\n")

    def _middle(self, key: tuple[Any, ...]) -> str:
        order, operation, work_center, provenance, item = key
        na, t = "\\N", self._t
        return (f"\t{t(order)}\t{na if operation is None else operation}\t{t(work_center)}\t"
                f"{na if provenance is None else provenance}\t{t(item)}\t")


_NO_SPLIT = "\t".join(["\\N"] * len(ELEMENTS))


def _split_text(split: Sequence[Decimal]) -> str:
    """An element split as COPY fields: each part in fixed notation, ``\\N`` for none of it."""
    text = "\t".join([str(part) if part else "\\N" for part in split])  # str(): fixed notation, unless ...
    if "E" in text:  # ... it chose an exponent
        text = "\t".join([fmt(part) if part else "\\N" for part in split])
    return text
