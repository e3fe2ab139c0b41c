"""Streaming CSV imports of items and opening balances, of any size: rows are validated as they are read, staged
chunk by chunk in a temporary table (COPY on PostgreSQL, an executemany per chunk on SQLite), checked against the
database set-based, and written with ``INSERT ... SELECT``. Memory does not grow with the file.

Invariants:
- All or nothing: a bad row anywhere refuses the whole file (``CsvImportError`` naming row and column) before
  anything is written to the ledger; the staging table lives in the caller's transaction.
- Idempotent: an item already there with the same content, and an opening balance already imported for an
  item x location x lot with the same quantity and unit cost, are "unchanged". A re-import never changes master
  data; a different opening balance is refused with the difference, unless the caller gives a reason to post
  the quantity difference as a count adjustment (``adjust_reason``).
- Opening balances are receipts (and the adjustments of corrected re-imports) whose idempotency key starts
  with ``import:balances``, dated ``effective_at``: by default ``OPENING_DEFAULT``, the start of the ledger's
  time, so they come before every event and move (the README's flow imports balances today and applies events
  dated earlier).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Column, Integer, MetaData, String, Table, and_, case, cast, exists, func, literal, select
from sqlalchemy import insert as sa_insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from ledger import service as ledger_service
from ledger.model import ItemKind, MoveKind, MoveRequest
from ledger.tables import items, locations, stock_balances, stock_lots, stock_moves
from ledger.units import UNIT_PLACES, unit_problem
from mes_common.csv_cells import Choice, Code, Number, Text
from mes_common.csv_report import CsvImportError
from mes_common.csv_validation import CsvRow, CsvTable, iter_csv
from mes_common.db import Money, Qty, UtcDateTime, copy_into, copy_text, insert_rows, is_postgres, utcnow
from mes_common.errors import DomainError
from mes_common.limits import MAX_RATE, MAX_VALUE, out_of_range
from mes_common.money import ZERO, fmt_qty, mul_cents
from mes_common.provenance import Provenance

CHUNK = 10_000
OPENING_KEY = "import:balances"  # every opening-balance move's idempotency key starts so (adjustments too)
OPENING_DEFAULT = datetime(1970, 1, 1, tzinfo=UTC)
ITEM_COLUMNS = (
    Code("code"), Text("name"), Code("uom", max_length=16), Choice("kind", tuple(k.value for k in ItemKind)),
)
BALANCE_COLUMNS = (
    Code("item"), Code("location"), Code("lot", required=False), Number("qty", positive=True, places=6),
    Number("unit_cost", minimum=ZERO, places=6, maximum=MAX_RATE),
)
_LIMIT = 1000  # issues fetched per set-based check (the report keeps up to 10,000)


@dataclass(frozen=True)
class ImportResult:
    """What an import did: ``created`` new records (or moves), ``unchanged`` ones already there, ``adjusted``
    opening balances corrected by a count adjustment."""

    kind: str
    file: str
    created: int
    unchanged: int
    adjusted: int = 0

    def __str__(self) -> str:
        adjusted = f", {self.adjusted} adjusted" if self.adjusted else ""
        return f"{self.kind} from {self.file}: {self.created} imported, {self.unchanged} already present{adjusted}"


def _open(source: str | Path | bytes, name: str | None) -> tuple[BinaryIO, str]:
    import io

    if isinstance(source, bytes):
        return io.BytesIO(source), name or "<csv>"
    path = Path(source)
    return path.open("rb"), name or path.name


def _stage(conn: Connection, columns: Sequence[Column[object]]) -> Table:
    """A temporary table for one import (dropped at commit on PostgreSQL, by ``_unstage`` on SQLite)."""
    name = f"import_stage_{uuid.uuid4().hex[:12]}"
    table = Table(name, MetaData(), Column("line", Integer(), nullable=False), *columns, prefixes=["TEMPORARY"],
                  postgresql_on_commit="DROP")
    table.create(conn)
    return table


def _unstage(conn: Connection, table: Table) -> None:
    if not is_postgres(conn):
        table.drop(conn)


def _load(conn: Connection, table: Table, rows: Iterator[tuple[object, ...]]) -> int:
    """Stream ``rows`` into ``table`` in chunks; returns how many."""
    names = [c.name for c in table.columns]
    count = 0
    chunk: list[tuple[object, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            _write_chunk(conn, table, names, chunk)
            count += len(chunk)
            chunk = []
    if chunk:
        _write_chunk(conn, table, names, chunk)
        count += len(chunk)
    return count


def _write_chunk(conn: Connection, table: Table, names: list[str], chunk: list[tuple[object, ...]]) -> None:
    if is_postgres(conn) and conn.dialect.driver == "psycopg":
        copy_into(conn, table, names, "".join("\t".join(copy_text(v) for v in row) + "\n" for row in chunk))
    elif conn.dialect.name == "sqlite":
        # The driver's executemany with the columns' own bind processing (scaled integers for decimals): the
        # statement is the same for every chunk, and SQLAlchemy's per-row parameter handling costs more than it.
        processors = [c.type.bind_processor(conn.dialect) for c in table.columns]
        rows = [tuple(v if p is None or v is None else p(v) for p, v in zip(processors, row, strict=True))
                for row in chunk]
        marks = ", ".join("?" * len(names))
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        cursor.executemany(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", rows)
        cursor.close()
    else:
        insert_rows(conn, table, names, chunk)


def _duplicates(conn: Connection, stage: Table, keys: Sequence[str], table: CsvTable) -> None:
    cols = [stage.c[k] for k in keys]
    first = select(*cols, func.min(stage.c.line).label("first")).group_by(*cols).having(func.count() > 1).subquery()
    query = (select(stage.c.line, *cols, first.c.first)
             .join_from(stage, first, and_(*(stage.c[k] == first.c[k] for k in keys)))
             .where(stage.c.line > first.c.first).order_by(stage.c.line).limit(_LIMIT))
    for row in conn.execute(query):
        shown = ", ".join(f"{k}={row._mapping[k]}" for k in keys)
        table.add_issue(row.line, keys[0], f"duplicate key ({shown}), first on row {row.first}")


def _rows(table: CsvTable, parsed: Iterator[CsvRow], build: Callable[[CsvRow], tuple[object, ...] | None]
          ) -> Iterator[tuple[object, ...]]:
    for row in parsed:
        staged = build(row)
        if staged is not None:
            yield staged


def import_items(conn: Connection, source: str | Path | bytes, *, actor: str, name: str | None = None,
                 progress: Callable[[int], None] | None = None) -> ImportResult:
    """Items of a CSV file (``code,name,uom,kind``): new ones inserted, identical ones unchanged, a change to an
    existing item refused (an import does not change master data)."""
    stream, label = _open(source, name)
    table = CsvTable(label, ITEM_COLUMNS)
    stage = _stage(conn, [Column("code", String(64)), Column("name", String(200)), Column("uom", String(16)),
                          Column("kind", String(16))])
    with stream:
        parsed = iter_csv(stream, ITEM_COLUMNS, table, progress=progress)
        total = _load(conn, stage, _rows(table, parsed, lambda r: (r.line, r["code"], r["name"], r["uom"], r["kind"])))
    _duplicates(conn, stage, ["code"], table)
    s, i = stage.c, items.c
    changed = (select(s.line, s.code, i.name, i.uom, i.kind).join_from(stage, items, i.code == s.code)
               .where((i.name != s.name) | (i.uom != s.uom) | (i.kind != s.kind)).order_by(s.line).limit(_LIMIT))
    for row in conn.execute(changed):
        table.add_issue(row.line, "code", f"item {row.code} already exists with other data (name {row.name}, uom "
                                          f"{row.uom}, kind {row.kind}); an import does not change master data")
    if table.issues:
        raise CsvImportError(label, table.issues, omitted=table.omitted)
    unchanged = conn.execute(select(func.count()).select_from(stage).join(items, i.code == s.code)).scalar_one()
    new = select(s.code, s.name, s.uom, s.kind, literal(utcnow(), UtcDateTime()), literal(actor, String()),
                 literal(label, String())).where(~exists().where(i.code == s.code))
    conn.execute(sa_insert(items).from_select(["code", "name", "uom", "kind", "created_at", "created_by", "source"],
                                              new))
    _unstage(conn, stage)
    return ImportResult("items", label, total - unchanged, unchanged)


def key_starts_with(key: ColumnElement[str], prefix: str) -> ColumnElement[bool]:
    """``key LIKE 'prefix%'`` as a range the unique index on ``stock_moves.idempotency_key`` serves on both
    databases (``prefix <= key < prefix with its last character incremented``), whatever the collation; the LIKE
    stays as an exact filter on the rows the range finds (a collation that skips punctuation could put other keys
    in the range, never leave a key with the prefix out). The reference is the plain LIKE
    (``tests/integration/edge/test_opening_lookup.py``)."""
    assert prefix and "%" not in prefix and "_" not in prefix
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    return and_(key >= prefix, key < upper, key.like(f"{prefix}%"))


def _opening_moves() -> Table:
    """Every opening-balance move so far, summed per item x location x lot: the quantity it stands at (receipts
    and the count adjustments of corrected re-imports), and the receipts' quantity and value (its unit cost)."""
    m = stock_moves.c
    signed = case((m.to_location.is_not(None), m.qty), else_=-m.qty)
    receipt = m.kind == MoveKind.RECEIPT.value
    location = func.coalesce(m.to_location, m.from_location)
    return (select(m.item, location.label("location"), m.lot, func.sum(signed).label("qty"),
                   func.sum(case((receipt, m.value), else_=0)).label("value"),
                   func.sum(case((receipt, m.qty), else_=0)).label("receipt_qty"))
            .where(key_starts_with(m.idempotency_key, OPENING_KEY))
            .group_by(m.item, location, m.lot).subquery("opening"))  # type: ignore[return-value]


def import_balances(conn: Connection, source: str | Path | bytes, *, actor: str, effective_at: datetime | None = None,
                    name: str | None = None, adjust_reason: str | None = None,
                    progress: Callable[[int], None] | None = None) -> ImportResult:
    """Opening balances of a CSV file (``item,location,lot,qty,unit_cost``) as receipts at qty x unit cost
    (cents), dated ``effective_at`` (default ``OPENING_DEFAULT``). One already imported with the same figures is
    unchanged; with other figures it is refused with the difference, or (``adjust_reason``) its quantity
    difference is posted as a count adjustment (a unit cost is never changed by a re-import)."""
    stream, label = _open(source, name)
    table = CsvTable(label, BALANCE_COLUMNS)
    stage = _stage(conn, [Column("item", String(64)), Column("location", String(64)), Column("lot", String(64)),
                          Column("qty", Qty()), Column("unit_cost", Qty()), Column("value", Money()),
                          Column("is_new", Integer(), nullable=False)])

    def build(row: CsvRow) -> tuple[object, ...] | None:
        qty, unit = row["qty"], row["unit_cost"]
        assert isinstance(qty, Decimal) and isinstance(unit, Decimal)
        value = mul_cents(qty, unit)
        if value > MAX_VALUE:  # the value too is within the ledger's range
            table.add_issue(row.line, "unit_cost", f"value {out_of_range(value, maximum=MAX_VALUE, places=2)} "
                                                   f"(qty x unit cost)")
            return None
        return (row.line, row["item"], row["location"], row["lot"] or "", qty, unit, value, 1)

    with stream:
        total = _load(conn, stage, _rows(table, iter_csv(stream, BALANCE_COLUMNS, table, progress=progress), build))
    s = stage.c
    _duplicates(conn, stage, ["item", "location", "lot"], table)
    for column, master in (("item", items), ("location", locations)):
        unknown = (select(s.line, stage.c[column]).where(
            ~exists().where(master.c.code == stage.c[column])).order_by(s.line).limit(_LIMIT))
        for line, code in conn.execute(unknown):
            table.add_issue(line, column, f"unknown {column} {code} (import {column}s first)")
    _unit_issues(conn, stage, table)
    opening = _opening_moves()
    key = and_(opening.c.item == s.item, opening.c.location == s.location, opening.c.lot == s.lot)
    unchanged = adjusted = 0
    adjustments: list[tuple[int, MoveRequest]] = []
    run = uuid.uuid4().hex[:16]
    prior = select(s.line, s.item, s.location, s.lot, s.qty, s.unit_cost, opening.c.qty.label("p_qty"),
                   opening.c.value.label("p_value"), opening.c.receipt_qty).join_from(stage, opening, key)
    for row in conn.execute(prior.order_by(s.line)):
        p_qty, p_value, p_receipts = _dec(row.p_qty, 6), _dec(row.p_value, 2), _dec(row.receipt_qty, 6)
        same_cost = mul_cents(p_receipts, row.unit_cost) == p_value
        lot = f" lot {row.lot}" if row.lot else ""
        if p_qty == row.qty and same_cost:
            unchanged += 1
            continue
        was = f"{fmt_qty(p_qty)} at {_cost(p_value / p_receipts if p_receipts else ZERO)}"
        where = f"opening balance of {row.item} at {row.location}{lot}"
        if not same_cost:
            table.add_issue(row.line, "unit_cost", f"{where} was imported as {was}, this file says unit cost "
                                                   f"{_cost(row.unit_cost)}: a re-import never revalues stock")
        elif adjust_reason is None:
            table.add_issue(row.line, "qty", f"{where} was imported as {was}, this file says {fmt_qty(row.qty)} "
                                             f"(difference {_signed(row.qty - p_qty)}); import with --adjust "
                                             "--reason to post the difference as a count adjustment")
        else:
            delta = row.qty - p_qty
            side = {"to_location": row.location} if delta > 0 else {"from_location": row.location}
            adjustments.append((row.line, MoveRequest(
                idempotency_key=f"import:balances-adjust:{run}:{row.line}", kind=MoveKind.ADJUSTMENT, item=row.item,
                qty=abs(delta), lot=row.lot, actor=actor, reason=f"{adjust_reason} ({label} row {row.line})"[:500],
                provenance=Provenance.MANUAL, reference=f"import:{label}"[:200], **side)))
    if table.issues:
        raise CsvImportError(label, table.issues, omitted=table.omitted)
    for line, request in adjustments:
        try:
            ledger_service.post_moves(conn, [request])
        except DomainError as exc:
            table.add_issue(line, "qty", exc.message)
        adjusted += 1
    if table.issues:
        raise CsvImportError(label, table.issues, omitted=table.omitted)
    created = _write_openings(conn, stage, opening, key, run=run, label=label, actor=actor,
                              effective_at=effective_at or OPENING_DEFAULT)
    _unstage(conn, stage)
    assert created + unchanged + adjusted == total, (created, unchanged, adjusted, total)
    return ImportResult("balances", label, created, unchanged, adjusted)


def _cost(unit: Decimal) -> str:
    return fmt_qty(unit.quantize(Decimal("0.000001")))


def _signed(qty: Decimal) -> str:
    return f"+{fmt_qty(qty)}" if qty > 0 else fmt_qty(qty)


def _dec(value: object, places: int) -> Decimal:
    """A SUM read back: an exact Decimal on PostgreSQL, a scaled integer on SQLite (sums bypass column types)."""
    if isinstance(value, Decimal):
        return value
    return Decimal(int(value or 0)).scaleb(-places)  # type: ignore[call-overload]


def _unit_issues(conn: Connection, stage: Table, table: CsvTable) -> None:
    """Rows whose quantity has more places than their item's unit allows (pcs 0, kg 3...)."""
    s, i = stage.c, items.c
    by_places: dict[int, list[str]] = {}
    for uom, places in UNIT_PLACES.items():
        by_places.setdefault(places, []).append(uom)
    for places, uoms in sorted(by_places.items()):
        if is_postgres(conn):
            fraction = s.qty != func.trunc(s.qty, places)
        else:  # scaled integers: whole multiples of 10^(6 - places)
            fraction = (cast(s.qty, Integer()) % 10 ** (6 - places)) != 0
        query = (select(s.line, s.item, s.qty, i.uom).join_from(stage, items, i.code == s.item)
                 .where(func.lower(i.uom).in_(uoms), fraction).order_by(s.line).limit(_LIMIT))
        for row in conn.execute(query):
            table.add_issue(row.line, "qty", f"{unit_problem(row.qty, row.uom)} (item {row.item})")


def _write_openings(conn: Connection, stage: Table, opening: Table, key: object, *, run: str, label: str,
                    actor: str, effective_at: datetime) -> int:
    """The staged rows without an opening balance yet: their receipts, balances and lots; returns how many."""
    s = stage.c
    conn.execute(stage.update().where(exists(select(1).select_from(opening).where(key)))  # type: ignore[arg-type]
                 .values(is_new=0))
    new = stage.select().where(s.is_new == 1).subquery()
    now = utcnow()
    text = String()
    moves = select(
        literal(f"import:balances:{run}:", text) + cast(new.c.line, String()), literal(MoveKind.RECEIPT.value, text),
        new.c.item, new.c.qty, new.c.location, new.c.lot, new.c.value, new.c.value, literal(actor[:64], text),
        literal(f"opening balance, {label} row ", text) + cast(new.c.line, String()),
        literal(Provenance.MANUAL.value, text), literal(effective_at, UtcDateTime()), literal(now, UtcDateTime()),
        literal(f"import:{label}"[:200], text), literal("", text),
    )
    created = conn.execute(select(func.count()).select_from(new)).scalar_one()
    conn.execute(sa_insert(stock_moves).from_select(
        ["idempotency_key", "kind", "item", "qty", "to_location", "lot", "value", "requested_value", "actor",
         "reason", "provenance", "effective_at", "recorded_at", "reference", "serials"], moves))
    dialect_insert = postgresql.insert if is_postgres(conn) else sqlite.insert
    upsert = dialect_insert(stock_balances).from_select(
        ["item", "location", "lot", "qty", "value"],
        select(new.c.item, new.c.location, new.c.lot, new.c.qty, new.c.value).where(literal(True)))
    conn.execute(upsert.on_conflict_do_update(
        index_elements=["item", "location", "lot"],
        set_={"qty": stock_balances.c.qty + upsert.excluded.qty,
              "value": stock_balances.c.value + upsert.excluded.value}))
    m = stock_moves.c
    lots = dialect_insert(stock_lots).from_select(
        ["item", "lot", "first_move_id", "created_at"],
        select(m.item, m.lot, func.min(m.id), literal(now, UtcDateTime()))
        .where(key_starts_with(m.idempotency_key, f"{OPENING_KEY}:{run}:"), m.lot != "").group_by(m.item, m.lot))
    conn.execute(lots.on_conflict_do_nothing())
    return int(created)
