"""Persistence of serial-numbered units: where each unit is now, and every move it took part in.

Invariants:
- A unit is in at most one place: ``stock_serials`` holds one row per (item, serial), locked (sorted, after the
  balances) by every posting that moves it, so two postings cannot both receive or both issue the same unit.
- A balance holds at least as many units as it has serial numbers located in it (``check`` reports otherwise).
- Serial-tracked moves go through ``ledger.service.post_moves`` (``write_moves`` alone does not track them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ledger.model import PostedMove, SerialState
from ledger.tables import stock_balances, stock_move_serials, stock_serials
from mes_common.db import is_postgres
from mes_common.money import fmt_qty

SerialKey = tuple[str, str]  # (item, serial)


def lock_serials(conn: Connection, keys: Iterable[SerialKey]) -> dict[SerialKey, SerialState]:
    """Create rows for serials never seen (not in stock), lock all in sorted order; returns their state."""
    ordered = sorted(set(keys))
    if not ordered:
        return {}
    insert = postgresql.insert(stock_serials) if is_postgres(conn) else sqlite.insert(stock_serials)
    conn.execute(
        insert.on_conflict_do_nothing(),
        [{"item": i, "serial": s, "lot": "", "location": None, "last_move_id": None} for i, s in ordered],
    )
    c = stock_serials.c
    query = (
        select(c.item, c.serial, c.lot, c.location)
        .where(tuple_(c.item, c.serial).in_(ordered))
        .order_by(c.item, c.serial)
    )
    if is_postgres(conn):
        query = query.with_for_update()
    return {(r.item, r.serial): SerialState(r.lot, r.location) for r in conn.execute(query)}


def write_serials(conn: Connection, moves: Sequence[PostedMove], states: Mapping[SerialKey, SerialState]) -> None:
    """Record which units each (already inserted) move carried and where those units are now."""
    links = [{"move_id": m.id, "item": m.item, "serial": s} for m in moves for s in m.serials]
    if not links:
        return
    conn.execute(stock_move_serials.insert(), links)
    last: dict[SerialKey, Any] = {(m.item, s): m.id for m in moves for s in m.serials}
    c = stock_serials.c
    conn.execute(
        update(stock_serials)
        .where(and_(c.item == bindparam("k_item"), c.serial == bindparam("k_serial")))
        .values(lot=bindparam("n_lot"), location=bindparam("n_location"), last_move_id=bindparam("n_move")),
        [
            {
                "k_item": i,
                "k_serial": s,
                "n_lot": states[(i, s)].lot,
                "n_location": states[(i, s)].location,
                "n_move": move_id,
            }
            for (i, s), move_id in sorted(last.items())
        ],
    )


def serials_in_stock(conn: Connection, item: str, location: str | None = None) -> list[tuple[str, str, str]]:
    """(serial, location, lot) of the units of ``item`` in stock, sorted by serial."""
    c = stock_serials.c
    query = select(c.serial, c.location, c.lot).where(c.item == item, c.location.is_not(None)).order_by(c.serial)
    if location is not None:
        query = query.where(c.location == location)
    return [(r.serial, r.location, r.lot) for r in conn.execute(query)]


def serial_history(conn: Connection, item: str, serial: str) -> list[int]:
    """Ids of the moves that carried one unit, oldest first."""
    c = stock_move_serials.c
    query = select(c.move_id).where(c.item == item, c.serial == serial).order_by(c.move_id)
    return list(conn.execute(query).scalars())


def check_serials(conn: Connection) -> list[str]:
    """Balances holding fewer units than the serial numbers located in them."""
    c, b = stock_serials.c, stock_balances.c
    counted = (
        select(c.item, c.location, c.lot, func.count().label("units"))
        .where(c.location.is_not(None))
        .group_by(c.item, c.location, c.lot)
        .subquery()
    )
    rows = conn.execute(
        select(counted.c.item, counted.c.location, counted.c.lot, counted.c.units, b.qty).join_from(
            counted,
            stock_balances,
            and_(b.item == counted.c.item, b.location == counted.c.location, b.lot == counted.c.lot),
            isouter=True,
        )
    )
    return [
        f"{r.units} serial numbers of {r.item} are at {r.location}"
        + (f" lot {r.lot}" if r.lot else "")
        + f" but its balance holds {fmt_qty(r.qty) if r.qty is not None else 0}"
        for r in rows
        if r.qty is None or r.qty < r.units
    ]
