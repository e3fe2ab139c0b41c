"""Read side of the ledger: recorded moves, on-hand stock (now or as of any past moment), average costs,
invariant checks.

Recorded moves read back as ``ledger.posting.post`` returned them, with their id (serial numbers are stored one
per line), so an idempotent retry is compared with the move as recorded (``PostedMove.differences``).

On-hand "as of T" is derived from the moves whose ``effective_at`` (when it happened) is at or before T, so a
late-arriving event dated in the past changes the past view too; it is read from daily checkpoints plus the moves
after them (``ledger.checkpoints``), equal to the plain sum (``onhand_by_scan``). Current on-hand reads the
balances table, which ``check`` proves equal to the sum of all moves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, literal, select, union_all
from sqlalchemy.engine import Connection, Row

from ledger.checkpoints import STOCK
from ledger.model import BalanceKey, LocationKind, MoveKind, PostedMove, UnknownMove
from ledger.serials import check_serials
from ledger.tables import locations, stock_balances, stock_moves
from mes_common.checkpoints import sums_as_of
from mes_common.money import ZERO, fmt, fmt_qty, unit_cost
from mes_common.provenance import Provenance


@dataclass(frozen=True)
class OnHandRow:
    item: str
    location: str
    lot: str
    qty: Decimal
    value: Decimal


def onhand(
    conn: Connection,
    item: str | None = None,
    location: str | None = None,
    as_of: datetime | None = None,
) -> list[OnHandRow]:
    """Stock per item x location x lot (rows with nothing left are omitted), sorted; ``as_of`` uses effective time."""
    if as_of is None:
        b = stock_balances.c
        query = select(b.item, b.location, b.lot, b.qty, b.value).where((b.qty != 0) | (b.value != 0))
        if item is not None:
            query = query.where(b.item == item)
        if location is not None:
            query = query.where(b.location == location)
        rows = [OnHandRow(r.item, r.location, r.lot, r.qty, r.value) for r in conn.execute(query)]
    else:
        if as_of.tzinfo is None:
            raise ValueError(f"as_of {as_of.isoformat()} has no timezone")
        # Daily checkpoints plus the moves after them (``ledger.checkpoints``): the cost does not grow with the
        # history; ``onhand_by_scan`` is the plain sum of every move it equals.
        wanted = {name: value for name, value in (("item", item), ("location", location)) if value is not None}
        sums = sums_as_of(conn, STOCK, as_of, wanted)
        rows = [OnHandRow(item_, location_, lot, q, v) for (item_, location_, lot), (q, v) in sums.items()]
    return sorted(rows, key=lambda r: (r.item, r.location, r.lot))


def onhand_by_scan(conn: Connection, item: str | None = None, location: str | None = None,
                   as_of: datetime | None = None) -> list[OnHandRow]:
    """``onhand`` as of ``as_of`` summed from every move (the reference, and the benchmark's baseline)."""
    totals = _sums_from_moves(conn, item=item, location=location, as_of=as_of)
    rows = [OnHandRow(k.item, k.location, k.lot, q, v) for k, (q, v) in totals.items() if q != 0 or v != 0]
    return sorted(rows, key=lambda r: (r.item, r.location, r.lot))


def onhand_json(rows: Iterable[OnHandRow]) -> dict[str, Any]:
    """SPEC's JSON: ``{"rows": [{"item", "location", "lot", "qty": "90", "value": "360.00"}]}``."""
    return {
        "rows": [
            {"item": r.item, "location": r.location, "lot": r.lot, "qty": fmt_qty(r.qty), "value": fmt(r.value)}
            for r in rows
        ]
    }


def average_costs(conn: Connection, items: Iterable[str]) -> dict[str, Decimal]:
    """Moving-average unit cost per item over its stores-kind locations (items without such stock are absent)."""
    wanted = sorted(set(items))
    if not wanted:
        return {}
    b = stock_balances.c
    rows = conn.execute(
        select(b.item, func.sum(b.qty).label("qty"), func.sum(b.value).label("value"))
        .join_from(stock_balances, locations, locations.c.code == b.location)
        .where(b.item.in_(wanted), locations.c.kind == str(LocationKind.STORES))
        .group_by(b.item)
    )
    return {r.item: unit_cost(r.value, r.qty) for r in rows if r.qty is not None and r.qty > 0}


def onhand_by_item(conn: Connection, items: Iterable[str] | None = None) -> dict[str, Decimal]:
    """Usable quantity per item: stock in stores and finished locations (not WIP, scrap or quarantine).

    With ``items`` every requested item is present (zero when none is on hand).
    """
    b = stock_balances.c
    query = (
        select(b.item, func.sum(b.qty).label("qty"))
        .join_from(stock_balances, locations, locations.c.code == b.location)
        .where(locations.c.kind.in_([str(LocationKind.STORES), str(LocationKind.FINISHED)]))
        .group_by(b.item)
    )
    result: dict[str, Decimal] = {}
    if items is not None:
        wanted = sorted(set(items))
        result = dict.fromkeys(wanted, ZERO)
        if not wanted:
            return result
        query = query.where(b.item.in_(wanted))
    for row in conn.execute(query):
        result[row.item] = row.qty
    return result


def _sums_from_moves(
    conn: Connection,
    *,
    item: str | None = None,
    location: str | None = None,
    as_of: datetime | None = None,
) -> dict[BalanceKey, tuple[Decimal, Decimal]]:
    """Quantity and value per balance key summed from the moves (in: +, out: -), grouped in the database."""
    m = stock_moves.c
    sides = []
    for column, sign in ((m.to_location, 1), (m.from_location, -1)):
        side = select(
            m.item,
            column.label("location"),
            m.lot,
            literal(sign).label("sign"),
            func.sum(m.qty).label("qty"),
            func.sum(m.value).label("value"),
        ).where(column.is_not(None))
        if item is not None:
            side = side.where(m.item == item)
        if location is not None:
            side = side.where(column == location)
        if as_of is not None:
            side = side.where(m.effective_at <= as_of)
        sides.append(side.group_by(m.item, column, m.lot))
    totals: dict[BalanceKey, tuple[Decimal, Decimal]] = {}
    for row in conn.execute(union_all(*sides)):
        key = BalanceKey(row.item, row.location, row.lot)
        qty, value = totals.get(key, (ZERO, ZERO))
        totals[key] = (qty + row.sign * row.qty, value + row.sign * row.value)
    return totals


def check(conn: Connection) -> list[str]:
    """Invariant violations of the ledger; an empty list means healthy."""
    problems: list[str] = []
    stored = {
        BalanceKey(r.item, r.location, r.lot): (r.qty, r.value)
        for r in conn.execute(
            select(
                stock_balances.c.item,
                stock_balances.c.location,
                stock_balances.c.lot,
                stock_balances.c.qty,
                stock_balances.c.value,
            )
        )
    }
    derived = _sums_from_moves(conn)
    for key in sorted(set(stored) | set(derived)):
        qty, value = stored.get(key, (ZERO, ZERO))
        want_qty, want_value = derived.get(key, (ZERO, ZERO))
        name = f"{key.item} at {key.location}" + (f" lot {key.lot}" if key.lot else "")
        if (qty, value) != (want_qty, want_value):
            problems.append(
                f"balance of {name} is {fmt_qty(qty)} / {fmt(value)} but its moves sum to "
                f"{fmt_qty(want_qty)} / {fmt(want_value)}"
            )
        if qty < 0 or value < 0:
            problems.append(f"balance of {name} is negative: {fmt_qty(qty)} / {fmt(value)}")
        if qty == 0 and value != 0:
            problems.append(f"balance of {name} has no quantity but a value of {fmt(value)}")
    original = stock_moves.alias("original")
    m = stock_moves.c
    bad_reversals = conn.execute(
        select(m.id, m.reverses)
        .join(original, original.c.id == m.reverses)
        .where(
            (m.item != original.c.item)
            | (m.qty != original.c.qty)
            | (m.lot != original.c.lot)
            | (func.coalesce(m.from_location, "") != func.coalesce(original.c.to_location, ""))
            | (func.coalesce(m.to_location, "") != func.coalesce(original.c.from_location, ""))
        )
    )
    problems += [f"move {r.id} does not mirror move {r.reverses} it reverses" for r in bad_reversals]
    return problems + check_serials(conn)


# ---------------------------------------------------------------------------------------------- moves


def _posted(row: Row[Any]) -> PostedMove:
    return PostedMove(
        id=row.id,
        idempotency_key=row.idempotency_key,
        kind=MoveKind(row.kind),
        item=row.item,
        qty=row.qty,
        from_location=row.from_location,
        to_location=row.to_location,
        lot=row.lot,
        value=row.value,
        requested_value=row.requested_value,
        actor=row.actor,
        reason=row.reason,
        provenance=Provenance(row.provenance),
        effective_at=row.effective_at,
        recorded_at=row.recorded_at,
        reference=row.reference,
        reverses=row.reverses,
        serials=tuple(row.serials.split("\n")) if row.serials else (),
    )


def find_moves(conn: Connection, idempotency_keys: Iterable[str]) -> dict[str, PostedMove]:
    """Recorded moves by idempotency key (only those that exist)."""
    wanted = sorted(set(idempotency_keys))
    if not wanted:
        return {}
    rows = conn.execute(select(stock_moves).where(stock_moves.c.idempotency_key.in_(wanted)))
    return {r.idempotency_key: _posted(r) for r in rows}


def get_move(conn: Connection, move_id: int) -> PostedMove:
    row = conn.execute(select(stock_moves).where(stock_moves.c.id == move_id)).first()
    if row is None:
        raise UnknownMove(move_id)
    return _posted(row)


def list_moves(
    conn: Connection, *, item: str | None = None, reference: str | None = None, limit: int | None = None
) -> list[PostedMove]:
    """Recorded moves in the order they were written (the latest ``limit`` of them), optionally filtered."""
    query = select(stock_moves).order_by(stock_moves.c.id.desc())
    if item is not None:
        query = query.where(stock_moves.c.item == item)
    if reference is not None:
        query = query.where(stock_moves.c.reference == reference)
    if limit is not None:
        query = query.limit(limit)
    return [_posted(r) for r in conn.execute(query)][::-1]


def lot_consumers(conn: Connection, item: str, lot: str) -> list[dict[str, Any]]:
    """Which work orders consumed lot ``lot`` of ``item`` (issues naming an order, net of their reversals), with
    how much and when: ``[{"work_order", "qty", "value", "first", "last"}]`` oldest first (traceability after a
    complaint). An issue reversed (the stock back in the lot) does not count; an order whose every issue of the lot
    was reversed is not listed. ``first`` and ``last`` are the moments of its issues."""
    m = stock_moves.c
    undone = stock_moves.alias("undone")
    issue = m.kind == MoveKind.ISSUE.value
    signed = case((issue, m.qty), else_=-m.qty)
    signed_value = case((issue, m.value), else_=-m.value)
    issued_at = case((issue, m.effective_at))
    rows = conn.execute(
        select(m.reference, func.sum(signed).label("qty"), func.sum(signed_value).label("value"),
               func.min(issued_at).label("first"), func.max(issued_at).label("last"))
        .select_from(stock_moves.outerjoin(undone, m.reverses == undone.c.id))
        .where(m.item == item, m.lot == lot, m.reference.is_not(None),
               issue | ((m.kind == MoveKind.REVERSAL.value) & (undone.c.kind == MoveKind.ISSUE.value)))
        .group_by(m.reference).having(func.sum(signed) > 0)
        .order_by(func.min(issued_at), m.reference)
    ).all()
    return [{"work_order": r.reference, "qty": fmt_qty(r.qty), "value": fmt(r.value),
             "first": _moment(r.first).isoformat(), "last": _moment(r.last).isoformat()} for r in rows]


def _moment(value: Any) -> datetime:
    """A MIN/MAX of a timestamp read back (SQLite returns it as text, without the column type)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)
