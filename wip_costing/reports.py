"""Questions asked of the cost journal: WIP value as of T, scrap loss, account balances, the journal export.

Invariant: every figure is a sum of journal lines dated (by event source time) up to T; nothing is read from
the pools, so "as of month end" and "now" are answered the same way.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import case, func, select, type_coerce
from sqlalchemy.engine import Connection

from ledger.model import MoveKind
from ledger.tables import stock_moves
from mes_common.checkpoints import sums_as_of
from mes_common.db import Money
from mes_common.errors import DomainError
from mes_common.money import ZERO, fmt, fmt_qty, to_cents
from wip_costing.checkpoints import JOURNAL, KEYS, VALUES
from wip_costing.energy import Energy, energy_by, order_energy
from wip_costing.journal import ELEMENTS, Account
from wip_costing.tables import event_problems, journal_lines, wo_operations, work_orders

BY = {
    "order": ("work_order",),
    "operation": ("work_order", "operation"),
    "work-center": ("work_center",),
    "element": ("element",),
    "provenance": ("provenance",),
}
ELEMENT_COLUMNS = tuple(element.value for element in ELEMENTS)
NO_CENTS = Decimal("0.00")


@dataclass(frozen=True)
class WipRow:
    key: dict[str, Any]
    value: Decimal
    share: Decimal
    kwh: Decimal | None = None  # energy used by the row's completions up to as_of (``wip_value(energy=True)``)

    def to_json(self) -> dict[str, Any]:
        out = {**self.key, "value": fmt(self.value), "share": fmt(self.share)}
        if self.kwh is not None:
            out["kwh"] = fmt_qty(self.kwh)
        return out


@dataclass(frozen=True)
class WipReport:
    as_of: datetime | None
    by: str
    total: Decimal
    rows: list[WipRow]

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": None if self.as_of is None else self.as_of.isoformat(),
            "by": self.by,
            "total": fmt(to_cents(self.total)),
            "rows": [r.to_json() for r in self.rows],
        }


def _balance(account: Account, as_of: datetime | None, *group: str) -> Any:
    c = journal_lines.c
    amount = type_coerce(func.coalesce(func.sum(c.debit), 0) - func.coalesce(func.sum(c.credit), 0), Money())
    columns = [c[name] for name in group]
    query = select(*columns, amount.label("value")).where(c.account == account.value)
    if as_of is not None:
        query = query.where(c.effective_at <= as_of)
    if columns:
        query = query.group_by(*columns).order_by(*columns)
    return query


def element_balances(*where: Any) -> Any:
    """One row: per cost element, the signed (debit positive) sum of the element columns of the lines ``where``."""
    c = journal_lines.c
    return select(*(
        type_coerce(func.coalesce(func.sum(case((c.debit > 0, c[name]), else_=-c[name])), 0), Money()).label(name)
        for name in ELEMENT_COLUMNS
    )).where(*where)


def account_balance(conn: Connection, account: Account, as_of: datetime | None = None) -> Decimal:
    """The balance (debit positive) of ``account`` as of ``as_of`` (None: everything posted), from the journal's
    checkpoints (``wip_costing.checkpoints``); ``account_balance_by_scan`` is the plain sum it equals."""
    sums = sums_as_of(conn, JOURNAL, as_of, {"account": account.value})
    return sum((values[0] for values in sums.values()), NO_CENTS)  # "0.00" when the account has no lines


def account_balance_by_scan(conn: Connection, account: Account, as_of: datetime | None = None) -> Decimal:
    row = conn.execute(_balance(account, as_of)).first()
    return _scaled(conn, None if row is None else row.value)


def _scaled(conn: Connection, value: Any) -> Decimal:
    # Sums are typed Money (type_coerce), so SQLite's scaled integers come back as Decimal already.
    if value is None:
        return ZERO
    return Decimal(value)


def _check_by(by: str) -> tuple[str, ...]:
    if by not in BY:
        raise DomainError(f"cannot group WIP by {by!r}: choose one of {', '.join(BY)}")
    return BY[by]


def _report(conn: Connection, as_of: datetime | None, by: str, rows: list[tuple[dict[str, Any], Decimal]],
            energy: bool) -> WipReport:
    total = sum((v for _, v in rows), ZERO)
    kwh = _row_kwh(conn, as_of, by) if energy else None
    out = [WipRow(k, v, (v / total).quantize(Decimal("0.0001")) if total else ZERO,
                  None if kwh is None else kwh.get(tuple(k.values()), ZERO if by != "element" else None))
           for k, v in rows]
    return WipReport(as_of, by, total, out)


def _row_kwh(conn: Connection, as_of: datetime | None, by: str) -> dict[tuple[Any, ...], Decimal] | None:
    if by == "element":
        used = sum((e.kwh for e in energy_by(conn, (), as_of=as_of).values()), ZERO)
        return {("energy",): used}
    if by == "provenance":
        return None
    return {key: e.kwh for key, e in energy_by(conn, BY[by], as_of=as_of).items()}


def wip_value(conn: Connection, as_of: datetime | None = None, by: str = "order", energy: bool = False) -> WipReport:
    """WIP value as of ``as_of`` (None: everything posted), grouped ``by`` order, operation, work-center,
    element or provenance; rows with a zero balance are left out; each row's share of the total.

    ``energy``: each order / operation / work-center row also carries the kWh its completions used up to
    ``as_of`` (the element row "energy" the kWh of all completions); it reads every completion, so it is asked for.

    Read from the journal's daily checkpoints plus the lines after them (``mes_common.checkpoints``), so the
    cost does not grow with the history; ``wip_value_by_scan`` is the plain sum over every line it equals."""
    group = _check_by(by)
    sums = sums_as_of(conn, JOURNAL, as_of, {"account": Account.WIP.value})
    rows: list[tuple[dict[str, Any], Decimal]] = []
    if by == "element":  # one row per element (alphabetical, as the others)
        for name in sorted(ELEMENT_COLUMNS):
            position = VALUES.index(name)
            value = sum((values[position] for values in sums.values()), ZERO)
            if value:
                rows.append(({"element": name}, value))
        return _report(conn, as_of, by, rows, energy)
    positions = [KEYS.index(name) for name in group]
    grouped: dict[tuple[Any, ...], Decimal] = {}
    for key, values in sums.items():
        wanted = tuple(key[p] for p in positions)
        grouped[wanted] = grouped.get(wanted, ZERO) + values[0]
    for wanted in sorted(grouped, key=_null_last):
        if grouped[wanted]:
            rows.append((dict(zip(group, wanted, strict=True)), grouped[wanted]))
    return _report(conn, as_of, by, rows, energy)


def _null_last(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """SQL's ascending order on PostgreSQL: NULL after every value."""
    return tuple((value is None, value) for value in key)


def wip_value_by_scan(conn: Connection, as_of: datetime | None = None, by: str = "order",
                      energy: bool = False) -> WipReport:
    """``wip_value`` as the plain sum of every WIP line up to ``as_of`` (the reference; the benchmark's baseline)."""
    group = _check_by(by)
    rows = []
    if by == "element":
        c = journal_lines.c
        where = [c.account == Account.WIP.value] + ([] if as_of is None else [c.effective_at <= as_of])
        sums = conn.execute(element_balances(*where)).one()
        for name in sorted(ELEMENT_COLUMNS):
            value = _scaled(conn, sums._mapping[name])
            if value:
                rows.append(({"element": name}, value))
    else:
        for r in conn.execute(_balance(Account.WIP, as_of, *group)):
            value = _scaled(conn, r.value)
            if value:
                rows.append((dict(zip(group, r[: len(group)], strict=True)), value))
    return _report(conn, as_of, by, rows, energy)


def scrap_loss(conn: Connection, as_of: datetime | None = None) -> Decimal:
    return account_balance(conn, Account.SCRAP_LOSS, as_of)


def balances(conn: Connection, as_of: datetime | None = None) -> dict[str, Decimal]:
    """Every account's balance (debit positive) as of ``as_of``, from the checkpoints (``balances_by_scan``:
    the plain sum)."""
    out: dict[str, Decimal] = {}
    for key, values in sums_as_of(conn, JOURNAL, as_of).items():
        out[key[0]] = out.get(key[0], ZERO) + values[0]
    return out


def balances_by_scan(conn: Connection, as_of: datetime | None = None) -> dict[str, Decimal]:
    return {r.account: _scaled(conn, r.value) for r in conn.execute(_balance_all(as_of))}


def _balance_all(as_of: datetime | None) -> Any:
    c = journal_lines.c
    query = select(c.account, type_coerce(func.sum(c.debit) - func.sum(c.credit), Money()).label("value")
                   ).group_by(c.account)
    if as_of is not None:
        query = query.where(c.effective_at <= as_of)
    return query


def unbalanced_entries(conn: Connection) -> list[tuple[str, Decimal, Decimal]]:
    """Entries whose debits differ from their credits (should be none)."""
    c = journal_lines.c
    query = (select(c.entry, type_coerce(func.sum(c.debit), Money()).label("d"),
                    type_coerce(func.sum(c.credit), Money()).label("c"))
             .group_by(c.entry).having(func.sum(c.debit) != func.sum(c.credit)))
    return [(r.entry, _scaled(conn, r.d), _scaled(conn, r.c)) for r in conn.execute(query)]


EXPORT_COLUMNS = ("id", "entry", "kind", "event_id", "effective_at", "recorded_at", "account", "debit", "credit",
                  "work_order", "operation", "work_center", "provenance", "item", "stock_move_id", *ELEMENT_COLUMNS,
                  "lot")  # lot: of the line's stock move (a component issued from a lot, the lot received)


def journal_lines_between(conn: Connection, start: datetime | None, end: datetime | None) -> Iterator[dict[str, Any]]:
    c = journal_lines.c
    moves = stock_moves.c
    query = (select(journal_lines, moves.lot).outerjoin(stock_moves, moves.id == c.stock_move_id)
             .order_by(c.effective_at, c.id))
    if start is not None:
        query = query.where(c.effective_at >= start)
    if end is not None:
        query = query.where(c.effective_at <= end)
    for r in conn.execute(query):
        line = dict(r._mapping)
        line["lot"] = line["lot"] or None
        yield line


def export_journal(conn: Connection, start: datetime | None, end: datetime | None, path: Path) -> int:
    """Write the journal lines with ``start <= effective_at <= end`` to ``path`` as CSV; returns the count."""
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(EXPORT_COLUMNS)
        for line in journal_lines_between(conn, start, end):
            writer.writerow(export_row(line))
            count += 1
    return count


def export_row(line: dict[str, Any]) -> list[str]:
    """A journal line as the export's CSV cells (``EXPORT_COLUMNS``; empty for none)."""
    return ["" if line[k] is None else _cell(line[k]) for k in EXPORT_COLUMNS]


def _cell(value: Any) -> str:
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def order_view(conn: Connection, order_id: str) -> dict[str, Any] | None:
    """A work order with per-operation quantities and pool values (``wo show``)."""
    row = conn.execute(select(work_orders).where(work_orders.c.id == order_id)).first()
    if row is None:
        return None
    c = wo_operations.c
    ops = conn.execute(select(wo_operations).where(c.work_order == order_id).order_by(c.operation)).all()
    m = stock_moves.c
    issued = conn.execute(
        select(m.item, m.lot, func.sum(m.qty).label("qty"), func.sum(m.value).label("value"))
        .where(m.reference == order_id, m.kind == MoveKind.ISSUE.value)
        .group_by(m.item, m.lot).order_by(m.item, m.lot)).all()
    energy, energy_per_op = order_energy(conn, order_id)
    return {
        "id": row.id, "item": row.item, "qty": fmt_qty(row.qty), "status": row.status,
        "bom_revision": row.bom_revision, "routing_revision": row.routing_revision,
        "released_on": row.released_on.isoformat(), "receiving_location": row.receiving_location,
        "produced": fmt_qty(row.produced),
        "operations": [
            {
                "operation": o.operation, "work_center": o.work_center, "received": fmt_qty(o.received),
                "completed_good": fmt_qty(o.completed_good), "scrapped": fmt_qty(o.scrapped),
                "reworked": fmt_qty(o.reworked), "written_off": fmt_qty(o.written_off),
                "waiting": fmt_qty(o.fp_qty + o.rw_qty),
                "first_pass": {"qty": fmt_qty(o.fp_qty), "value": fmt(o.fp_value)},
                "rework": {"qty": fmt_qty(o.rw_qty), "value": fmt(o.rw_value)},
                "energy": energy_per_op.get(o.operation, Energy()).to_json(),
            }
            for o in ops
        ],
        # Components issued to the order, per item and lot (lot "" : stock held without a lot).
        "materials": [{"item": r.item, "lot": r.lot, "qty": fmt_qty(r.qty), "value": fmt(r.value)} for r in issued],
        "energy": energy.to_json(),
    }


def list_problems(conn: Connection, status: str | None = None, limit: int = 1000, *,
                  newest_first: bool = False) -> list[dict[str, Any]]:
    """Stored rejected / conflicting events: the first ``limit`` (or with ``newest_first`` the latest)."""
    c = event_problems.c
    query = select(event_problems).order_by(c.id.desc() if newest_first else c.id).limit(limit)
    if status is not None:
        query = query.where(c.status == status)
    return [dict(r._mapping) for r in conn.execute(query)]


MARKER_WINDOW = 1000


def change_marker(conn: Connection) -> tuple[int, ...]:
    """A cheap fingerprint of the journal and the stored problems that changes whenever a line or a problem is
    committed (the dashboard's stream polls it several times a second).

    Ids come from a sequence, so a transaction can commit after one holding a higher id: the newcomer fills a
    gap below the maximum. Besides each maximum id, the number of ids in the last ``MARKER_WINDOW`` numbers
    catches that (an index range scan, not a count of the table)."""
    columns = []
    for table in (journal_lines, event_problems):
        top = func.coalesce(select(func.max(table.c.id)).scalar_subquery(), 0)
        recent = select(func.count()).select_from(table).where(table.c.id > top - MARKER_WINDOW).scalar_subquery()
        columns += [top, recent]
    return tuple(int(value) for value in conn.execute(select(*columns)).one())  # one round trip
