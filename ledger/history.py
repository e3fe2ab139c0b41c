"""No as-of view ever shows negative stock: a move dated in the past is checked against the balance at every
later moment, not only against the balance now.

``first_negative`` is the pure rule (a balance's quantity through time, with the new moves added); ``check_history``
runs it for the balances a batch of new moves takes from, with one query per such balance for the moves dated
after the batch's earliest move on it (none for moves dated now: the usual case costs one indexed look-up).

Invariant kept: for every balance and every moment T, the sum of the moves dated at or before T is not negative
(``ledger.queries.onhand(as_of=T)`` never shows a negative quantity).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.engine import Connection

from ledger.model import BalanceKey, PostedMove
from ledger.tables import stock_moves
from mes_common.errors import DomainError
from mes_common.money import ZERO, fmt_qty


class NegativeInThePast(DomainError):
    """A back-dated move that would leave a balance negative at some later moment."""

    code = "negative_in_the_past"

    def __init__(self, key: BalanceKey, dated: datetime, moment: datetime, qty: Decimal) -> None:
        self.key, self.dated, self.moment, self.qty = key, dated, moment, qty
        lot = f" lot {key.lot}" if key.lot else ""
        super().__init__(
            f"insufficient stock of {key.item}{lot} at {key.location} as of {moment.isoformat()}: a move dated "
            f"{dated.isoformat()} would leave {fmt_qty(qty)} then (stock is never negative at any moment)"
        )


def first_negative(now: Decimal, later: Iterable[tuple[datetime, Decimal]], new: Iterable[tuple[datetime, Decimal]]
                   ) -> tuple[datetime, Decimal] | None:
    """The first moment (and quantity) at which a balance would be negative, or None.

    ``now``: its quantity now, without the new moves; ``later``: (moment, signed quantity) of its recorded moves
    dated after the earliest new move; ``new``: the new moves (moment, signed quantity). Moves at one moment
    count together (an as-of view includes every move at that moment)."""
    new = list(new)
    if not new:
        return None
    later = list(later)
    start = min(moment for moment, _ in new)
    qty = now - sum((delta for _, delta in later), ZERO)  # as of just before the first new move
    changes: dict[datetime, Decimal] = {}
    for moment, delta in (*later, *new):
        changes[moment] = changes.get(moment, ZERO) + delta
    for moment in sorted(m for m in changes if m >= start):
        qty += changes[moment]
        if qty < 0:
            return moment, qty
    return None


def _signed(move: PostedMove, key: BalanceKey) -> Decimal:
    return move.qty if move.to_key == key else -move.qty


def check_history(conn: Connection, moves: Sequence[PostedMove], before: Mapping[BalanceKey, Decimal]) -> None:
    """Refuse ``moves`` (not yet written) when one, dated in the past, would leave a balance it takes from
    negative at some moment after it. ``before``: each such balance's quantity now, without ``moves``."""
    taken: dict[BalanceKey, list[PostedMove]] = {}
    for move in moves:
        if move.from_key is not None:
            taken.setdefault(move.from_key, [])
    for move in moves:
        for key in (move.from_key, move.to_key):
            if key is not None and key in taken:
                taken[key].append(move)
    m = stock_moves.c
    for key, mine in sorted(taken.items()):
        start = min(move.effective_at for move in mine)
        signed = case((m.to_location == key.location, m.qty), else_=-m.qty)
        later = conn.execute(
            select(m.effective_at, signed.label("delta"))
            .where(m.item == key.item, m.lot == key.lot, m.effective_at > start,
                   (m.from_location == key.location) | (m.to_location == key.location))
        ).all()
        if not later and all(move.effective_at == start for move in mine):
            continue  # nothing dated after: the balance now is the only moment to check, and post() did
        found = first_negative(before.get(key, ZERO), [(r.effective_at, _dec(r.delta)) for r in later],
                               [(move.effective_at, _signed(move, key)) for move in mine])
        if found is not None:
            dated = min(move.effective_at for move in mine if move.from_key == key)
            raise NegativeInThePast(key, dated, *found)


def _dec(value: object) -> Decimal:
    """A signed quantity read back (through the column type, or a scaled integer on SQLite)."""
    if isinstance(value, Decimal):
        return value
    return Decimal(int(value)).scaleb(-6)  # type: ignore[call-overload]


LATER_MOVES_SQL = ("SELECT item, from_location, to_location, lot, effective_at, qty FROM stock_moves "
                   "WHERE item = ANY(%s) AND effective_at > %s")


def later_moves(conn: Connection, keys: Iterable[BalanceKey], after: datetime
                ) -> dict[BalanceKey, list[tuple[datetime, Decimal]]]:
    """Per balance of ``keys`` (any lot of their item at their location), its recorded moves dated after ``after``
    as (moment, signed quantity): what a batch of moves dated ``after`` or later must not drive negative. Call it
    with the balances locked, so no other transaction adds to them (PostgreSQL: ``LATER_MOVES_SQL`` in the lock's
    round trip, grouped by ``group_later``)."""
    keys = list(keys)
    if not keys:
        return {}
    m = stock_moves.c
    rows = conn.execute(
        select(m.item, m.from_location, m.to_location, m.lot, m.effective_at, m.qty)
        .where(m.item.in_(sorted({k.item for k in keys})), m.effective_at > after)
    ).all()
    return group_later(rows, keys)


def group_later(rows: Iterable[Sequence[Any]], keys: Iterable[BalanceKey]
                ) -> dict[BalanceKey, list[tuple[datetime, Decimal]]]:
    """(item, from_location, to_location, lot, effective_at, qty) rows as signed moves per balance of ``keys``'
    items and locations."""
    pairs = {(k.item, k.location) for k in keys}
    found: dict[BalanceKey, list[tuple[datetime, Decimal]]] = {}
    for item, source, target, lot, moment, qty in rows:
        for location, sign in ((source, -1), (target, 1)):
            if location is not None and (item, location) in pairs:
                found.setdefault(BalanceKey(item, location, lot), []).append((moment, sign * qty))
    return found
