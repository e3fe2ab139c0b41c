"""Appending cost journal lines, and the COPY text format the PostgreSQL writes share.

Works inside the caller's connection and transaction. Invariants:
- Journal lines are only ever inserted.
- A batch's lines go out in one COPY on PostgreSQL (``JournalStream`` sends them ``COPY_CHUNK`` lines at a time
  while the caller computes more), one executemany on SQLite; never row by row.
- While a ``JournalStream`` is open no other statement may run on the connection; leaving it with an exception
  aborts the COPY and with it the transaction.
- COPY text is exact: amounts in fixed notation (never exponent), ``\\N`` for NULL, backslash, tab, newline and
  carriage return escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from mes_common.db import is_postgres
from mes_common.money import ZERO
from wip_costing.journal import ELEMENTS, JournalEntry
from wip_costing.tables import journal_lines

# Journal lines per COPY write (~15 kB): large enough to keep the per-write overhead small, small enough that the
# server works on one chunk while the next is computed, and has little left to do when the batch ends.
COPY_CHUNK = 100

JOURNAL_COLUMNS = ("entry", "kind", "event_id", "account", "debit", "credit", "work_order", "operation",
                   "work_center", "provenance", "item", "stock_move_id", "effective_at", "recorded_at",
                   *(element.value for element in ELEMENTS))


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
    """Append the lines of ``entries``: COPY on PostgreSQL (thousands of lines per batch), executemany on SQLite."""
    if not is_postgres(conn):
        rows = journal_tuples(entries, move_ids, recorded_at)
        if rows:
            copy_or_insert(conn, journal_lines, JOURNAL_COLUMNS, rows)
        return len(rows)
    if not any(entry.lines for _, entry in entries):
        return 0
    with JournalStream(conn, move_ids, recorded_at) as stream:
        for key, entry in entries:
            stream.add_entry(key, entry)
            stream.flush_if_full()
    return stream.count


class JournalText:
    """Journal lines in COPY text format (``JOURNAL_COLUMNS``), accumulated in ``lines``.

    ``move_ids[i]`` is the id of move index ``i``. The hot path of a batch: per entry its own fields are formatted
    once; per line its amounts (and element split), and the rest (order, operation, work center, provenance,
    item) is looked up, as a batch repeats few combinations of them.
    """

    def __init__(self, move_ids: Sequence[int], recorded_at: datetime) -> None:
        self.lines: list[str] = []
        self._move_ids = move_ids
        self._recorded = recorded_at.isoformat()
        self._memo: dict[Any, str] = {}
        self._fields: dict[tuple[Any, ...], str] = {}
        self._when: datetime | None = None
        self._tail = ""

    def _t(self, value: Any) -> str:
        memo = self._memo
        found = memo.get(value)
        if found is None:
            found = memo[value] = copy_text(value)
        return found

    def add_entry(self, key: str, entry: JournalEntry) -> None:
        self._add(self._t(key), entry)

    def add_event(self, event_id: str, entries: Sequence[JournalEntry]) -> None:
        """The lines of one applied event's entries, keyed ``<event id>#1``, ``#2``, ... (as ``apply_events``)."""
        prefix = copy_text(event_id)
        for n, entry in enumerate(entries, 1):
            self._add(f"{prefix}#{n}", entry)

    def _add(self, key_text: str, entry: JournalEntry) -> None:
        move_ids, out, fields, amount, na = self._move_ids, self.lines, self._fields, _amount_text, "\\N"
        head = f"{key_text}\t{entry.kind}\t{self._t(entry.event_id)}\t"
        if entry.effective_at is not self._when:  # an event's entries share their time: format it once
            self._when = entry.effective_at
            self._tail = f"\t{entry.effective_at.isoformat()}\t{self._recorded}\t"
        tail = self._tail
        order = entry.work_order
        for line in entry.lines:
            key = line[3:8] if line[3] is not None else (order, *line[4:8])
            middle = fields.get(key)
            if middle is None:
                middle = fields[key] = self._middle(key)
            debit, credit, index, split = line[1], line[2], line[8], line[9]
            # format(amount, "f") is slow: str() gives the same text for cents, "0" for ZERO (checked for "E").
            debit_text = "0" if debit is ZERO else str(debit)
            credit_text = "0" if credit is ZERO else str(credit)
            if "E" in debit_text or "E" in credit_text:
                debit_text, credit_text = amount(debit), amount(credit)
            out.append(f"{head}{line[0]}\t{debit_text}\t{credit_text}{middle}"
                       f"{na if index is None else move_ids[index]}{tail}"
                       f"{_NO_SPLIT if split is None else _split_text(split)}\n")

    def _middle(self, key: tuple[Any, ...]) -> str:
        order, operation, work_center, provenance, item = key
        na, t = "\\N", self._t
        return (f"\t{t(order)}\t{na if operation is None else operation}\t{t(work_center)}\t"
                f"{na if provenance is None else provenance}\t{t(item)}\t")


_NO_SPLIT = "\t".join(["\\N"] * len(ELEMENTS))


def _split_text(split: Sequence[Decimal]) -> str:
    """An element split as COPY fields: each part as ``_amount_text`` gives it, ``\\N`` for none of it."""
    text = "\t".join([str(part) if part else "\\N" for part in split])  # str() is format "f" for cents ...
    if "E" in text:  # ... unless it chose exponent notation
        text = "\t".join([_amount_text(part) if part else "\\N" for part in split])
    return text


class JournalStream(JournalText):
    """PostgreSQL: one COPY into ``journal_lines`` kept open while lines are added (sent ``COPY_CHUNK`` lines or
    so at a time), so the server parses and indexes them while the caller computes more.

    While it is open no other statement may run on the connection. Leaving the block with an exception aborts
    the COPY (and with it the transaction); ``count`` is the number of lines sent.
    """

    def __init__(self, conn: Connection, move_ids: Sequence[int], recorded_at: datetime) -> None:
        super().__init__(move_ids, recorded_at)
        raw = conn.connection.driver_connection
        assert raw is not None
        self._raw = raw
        self._cursor: Any = None
        self._copy_context: Any = None
        self._copy: Any = None
        self.count = 0

    def __enter__(self) -> JournalStream:
        self._cursor = self._raw.cursor()
        self._copy_context = self._cursor.copy(
            f"COPY {journal_lines.name} ({', '.join(JOURNAL_COLUMNS)}) FROM STDIN")
        self._copy = self._copy_context.__enter__()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc is None and self.lines:
                self._flush()
            self._copy_context.__exit__(exc_type, exc, tb)
        finally:
            self._cursor.close()

    def flush_if_full(self) -> None:
        if len(self.lines) >= COPY_CHUNK:
            self._flush()

    def _flush(self) -> None:
        # Straight to the connection (psycopg's own COPY buffer would hold up to 32 kB): the server gets to work
        # on each chunk at once.
        self._copy.writer.write("".join(self.lines).encode())
        self.count += len(self.lines)
        self.lines = []


def _amount_text(amount: Decimal) -> str:
    """``format(amount, "f")``, faster: ``str`` gives the same text unless it picks exponent notation."""
    if amount is ZERO:
        return "0"
    text = str(amount)
    return text if "E" not in text else format(amount, "f")


def copy_text(value: Any) -> str:
    """One field in COPY's text format (the caller's values are str, int, Decimal, datetime or None)."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def copy_into(conn: Connection, table: Any, columns: Sequence[str], text: str) -> None:
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(text.encode())


def copy_or_insert(conn: Connection, table: Any, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    if is_postgres(conn):
        # Formatting the text rows here is several times faster than write_row's per-value adaptation.
        copy_into(conn, table, columns, "".join("\t".join(map(copy_text, row)) + "\n" for row in rows))
    else:
        conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])

