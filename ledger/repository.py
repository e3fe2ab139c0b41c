"""Persistence of the stock ledger's write path (SQLAlchemy Core, psycopg): balance locks, move inserts (COPY),
balance updates (moves may carry ids reserved beforehand). Every function works inside the caller's transaction.

Posting a batch of requests (``post_moves``, ``reverse_move``) is ``ledger.service``; reading moves back is
``ledger.queries``.

Invariants:
- Balance rows are locked in sorted ``BalanceKey`` order (created first, also in that order), so concurrent
  postings never deadlock; on SQLite writers are already serialised by ``BEGIN IMMEDIATE``.
- Moves are only inserted; balances are updated in the same transaction (``check`` proves they agree).
- ``write_moves`` is set-based (one executemany or COPY of the moves, one executemany update of the
  balances): the event hot path relies on it.
- An idempotency key taken by a concurrent transaction when the moves are written (a lost race) is reported as
  ``MoveConflict``: the caller rolls back, and may retry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from sqlalchemy import and_, bindparam, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ledger.history import LATER_MOVES_SQL, group_later, later_moves
from ledger.master import (
    add_items,
    add_locations,
    default_location,
    get_items,
    get_locations,
)
from ledger.model import (
    AlreadyReversed,
    Balance,
    BalanceKey,
    MoveConflict,
    PostedMove,
)
from ledger.queries import OnHandRow, average_costs, check, find_moves, onhand, onhand_by_item, onhand_json
from ledger.serials import serial_history, serials_in_stock
from ledger.tables import stock_balances, stock_lots, stock_moves
from mes_common.db import Money, Qty, copy_raw, copy_statement, copy_text, copy_text_memo, is_postgres, utcnow
from mes_common.money import ZERO, fmt, fmt_qty

__all__ = [
    "OnHandRow",
    "add_items",
    "add_locations",
    "average_costs",
    "check",
    "default_location",
    "get_items",
    "get_locations",
    "lock_balances",
    "onhand",
    "onhand_by_item",
    "onhand_json",
    "serial_history",
    "serials_in_stock",
    "write_moves",
]


def _insert(conn: Connection, table: Any) -> Any:
    return postgresql.insert(table) if is_postgres(conn) else sqlite.insert(table)


# ---------------------------------------------------------------------------------------------- balances


def lock_balances(conn: Connection, keys: Iterable[BalanceKey]) -> dict[BalanceKey, Balance]:
    """Create missing balance rows, then lock all of them in sorted key order; returns their current state.

    Call it once per transaction with every key the transaction will touch (sorted locking is only
    deadlock-free when all locks are taken in one ordered sweep). Items and locations must exist (foreign keys).
    """
    ordered = sorted({BalanceKey(*k) for k in keys})
    if not ordered:
        return {}
    if is_postgres(conn):
        return _pg_lock_balances(conn, ordered)
    # SQLite (writers serialised by BEGIN IMMEDIATE, so reading is locking). Created in sorted order too: a
    # concurrent creator of the same new row makes us wait in the same order.
    conn.execute(
        _insert(conn, stock_balances).on_conflict_do_nothing(),
        [{"item": k.item, "location": k.location, "lot": k.lot, "qty": ZERO, "value": ZERO} for k in ordered],
    )
    b = stock_balances.c
    query = (
        select(b.item, b.location, b.lot, b.qty, b.value)
        .where(tuple_(b.item, b.location, b.lot).in_([tuple(k) for k in ordered]))
        .order_by(b.item, b.location, b.lot)
    )
    result = {}
    for row in conn.execute(query):
        key = BalanceKey(row.item, row.location, row.lot)
        result[key] = Balance(key, row.qty, row.value)
    return result


Later = dict[BalanceKey, list[tuple[datetime, Decimal]]]


def lock_balances_with_lots(conn: Connection, keys: Iterable[BalanceKey], later_than: datetime | None = None
                            ) -> tuple[dict[BalanceKey, Balance], dict[tuple[str, str], list[str]], Later]:
    """``lock_balances`` of ``keys``, and also of every lot with stock of the same item at the same location (in
    the same sorted sweep); returns the balances and, per (item, location), its lots with stock in the order of
    their first receipt (the order an issue takes them, ``ledger.lots``), and (``later_than``) the moves of those
    balances dated after that moment (``ledger.history.later_moves``, read once the rows are locked). On
    PostgreSQL one round trip, as ``lock_balances``."""
    wanted = sorted({BalanceKey(*k) for k in keys})
    if not wanted:
        return {}, {}, {}
    if is_postgres(conn) and conn.dialect.driver == "psycopg":
        return _pg_lock_with_lots(conn, wanted, later_than)
    b, lots, m = stock_balances.c, stock_lots.c, stock_moves.c
    pairs = sorted({(k.item, k.location) for k in wanted})
    found = conn.execute(
        select(b.item, b.location, b.lot)
        .join_from(stock_balances, stock_lots, (lots.item == b.item) & (lots.lot == b.lot))
        .join(stock_moves, m.id == lots.first_move_id)
        .where(tuple_(b.item, b.location).in_(pairs), b.lot != "", b.qty > 0)
        .order_by(b.item, b.location, m.effective_at, lots.first_move_id, b.lot)
    ).all()
    order: dict[tuple[str, str], list[str]] = {}
    for item, location, lot in found:
        order.setdefault((item, location), []).append(lot)
    extra = [BalanceKey(item, location, lot) for (item, location), held in order.items() for lot in held]
    locked = lock_balances(conn, [*wanted, *extra])
    return locked, order, {} if later_than is None else later_moves(conn, wanted, later_than)


# The requested rows and every lot row with stock of the same item x location, locked in key order, with each lot's
# first receipt (for the issue order).
_PG_LOCK_WITH_LOTS = (
    "SELECT b.item, b.location, b.lot, b.qty, b.value, m.effective_at, l.first_move_id "
    "FROM unnest(%s::text[], %s::text[], %s::text[]) AS k(item, location, lot) "
    "JOIN stock_balances b ON b.item = k.item AND b.location = k.location "
    "AND (b.lot = k.lot OR (k.lot = '' AND b.lot <> '' AND b.qty > 0)) "
    "LEFT JOIN stock_lots l ON l.item = b.item AND l.lot = b.lot AND b.lot <> '' "
    "LEFT JOIN stock_moves m ON m.id = l.first_move_id "
    "ORDER BY b.item, b.location, b.lot FOR UPDATE OF b"
)


def _pg_lock_with_lots(conn: Connection, ordered: list[BalanceKey], later_than: datetime | None
                       ) -> tuple[dict[BalanceKey, Balance], dict[tuple[str, str], list[str]], Later]:
    dbapi_conn: Any = conn.connection.dbapi_connection
    items, places = [k.item for k in ordered], [k.location for k in ordered]
    with dbapi_conn.pipeline():
        with dbapi_conn.cursor() as create:
            create.executemany(_PG_CREATE_BALANCE, ordered)
        lock = dbapi_conn.cursor()
        lock.execute(_PG_LOCK_WITH_LOTS, [items, places, [k.lot for k in ordered]])
        after = dbapi_conn.cursor()
        if later_than is not None:  # after the lock: nobody else adds moves to these balances now
            after.execute(LATER_MOVES_SQL, [sorted(set(items)), later_than])
    with after:
        later = group_later(after.fetchall(), ordered) if later_than is not None else {}
    with lock:
        rows = lock.fetchall()
    balances: dict[BalanceKey, Balance] = {}
    firsts: dict[tuple[str, str], list[tuple[Any, int, str]]] = {}
    for item, location, lot, qty, value, first_at, first_id in rows:
        key = BalanceKey(item, location, lot)
        balances[key] = Balance(key, qty, value)
        if lot and qty > 0 and first_id is not None:
            firsts.setdefault((item, location), []).append((first_at, first_id, lot))
    return balances, {pair: [lot for *_, lot in sorted(held)] for pair, held in firsts.items()}, later


_PG_CREATE_BALANCE = (
    "INSERT INTO stock_balances (item, location, lot, qty, value) VALUES (%s, %s, %s, 0, 0) ON CONFLICT DO NOTHING"
)
_PG_LOCK_BALANCES = (
    "SELECT b.item, b.location, b.lot, b.qty, b.value FROM stock_balances b "
    "JOIN unnest(%s::text[], %s::text[], %s::text[]) AS k(item, location, lot) "
    "ON (b.item, b.location, b.lot) = (k.item, k.location, k.lot) "
    "ORDER BY b.item, b.location, b.lot FOR UPDATE OF b"
)


def _pg_lock_balances(conn: Connection, ordered: list[BalanceKey]) -> dict[BalanceKey, Balance]:
    """Both statements in one psycopg pipeline (one round trip): the server still runs the inserts, in sorted
    order, before the locking SELECT, and a set join on arrays is cheaper than a long IN list of tuples."""
    dbapi_conn: Any = conn.connection.dbapi_connection
    with dbapi_conn.pipeline():
        with dbapi_conn.cursor() as create:
            create.executemany(_PG_CREATE_BALANCE, ordered)
        lock = dbapi_conn.cursor()
        lock.execute(
            _PG_LOCK_BALANCES, [[k.item for k in ordered], [k.location for k in ordered], [k.lot for k in ordered]]
        )
    with lock:
        rows = lock.fetchall()
    return {BalanceKey(i, loc, lot): Balance(BalanceKey(i, loc, lot), qty, value) for i, loc, lot, qty, value in rows}


def write_moves(conn: Connection, moves: Sequence[PostedMove], balances: Mapping[BalanceKey, Balance], *,
                ids: Sequence[int] | None = None) -> list[int]:
    """Insert ``moves`` (one executemany, or COPY from 4 moves on PostgreSQL) and store ``balances`` (one
    executemany); returns the move ids, in the order of ``moves``.

    ``ids`` (PostgreSQL): ids reserved with ``NEXT_MOVE_IDS``, one per move in order (extra ones are left
    unused: a sequence has gaps anyway); without them the moves take theirs from the sequence.

    ``balances`` rows must exist and be locked (``lock_balances``). Raises ``MoveConflict`` when another
    transaction committed one of the idempotency keys first (a lost race): balances are then untouched but some
    moves may be inserted, so the caller must roll the transaction back (and may retry it: the retry's
    idempotency lookup will see the winner's move).
    """
    if not moves:
        return []
    given = None if ids is None else list(ids[:len(moves)])
    if given is not None and len(given) != len(moves):
        raise ValueError(f"{len(moves)} moves but only {len(given)} reserved ids")
    inserted = _insert_moves(conn, moves, given)
    if len(inserted) != len(moves):
        _raise_lost_race(conn, [m for m in moves if m.idempotency_key not in inserted])
    write_balances(conn, balances)
    lots = {(m.item, m.lot): inserted[m.idempotency_key] for m in reversed(moves) if m.lot}
    if lots:
        now = utcnow()
        conn.execute(
            _insert(conn, stock_lots).on_conflict_do_nothing(),
            [
                {"item": i, "lot": lot, "first_move_id": mid, "created_at": now}
                for (i, lot), mid in sorted(lots.items())
            ],
        )
    return [inserted[m.idempotency_key] for m in moves]


def write_balances(conn: Connection, balances: Mapping[BalanceKey, Balance]) -> None:
    """Store ``balances`` (rows that exist and are locked by ``lock_balances``): one statement."""
    if balances and is_postgres(conn):
        _pg_update_balances(conn, balances)
    elif balances:
        b = stock_balances.c
        conn.execute(
            update(stock_balances)
            .where(
                and_(b.item == bindparam("k_item"), b.location == bindparam("k_location"), b.lot == bindparam("k_lot"))
            )
            .values(qty=bindparam("n_qty", type_=Qty()), value=bindparam("n_value", type_=Money())),
            [
                {"k_item": k.item, "k_location": k.location, "k_lot": k.lot, "n_qty": bal.qty, "n_value": bal.value}
                for k, bal in sorted(balances.items())
            ],
        )


_PG_UPDATE_BALANCES = (
    "UPDATE stock_balances AS b SET qty = v.qty, value = v.value "
    "FROM unnest(%s::text[], %s::text[], %s::text[], %s::numeric[], %s::numeric[]) "
    "AS v(item, location, lot, qty, value) "
    "WHERE (b.item, b.location, b.lot) = (v.item, v.location, v.lot)"
)
_QTY, _MONEY = Qty(), Money()


def _pg_update_balances(conn: Connection, balances: Mapping[BalanceKey, Balance]) -> None:
    """All balances in one statement whose text does not depend on their number (arrays); the values are checked
    as the ``Qty``/``Money`` column types check them on the other paths."""
    rows = sorted(balances.items())
    qty = [_QTY.exact(bal.qty) for _, bal in rows]
    value = [_MONEY.exact(bal.value) for _, bal in rows]
    dbapi_conn: Any = conn.connection.dbapi_connection
    with dbapi_conn.cursor() as cur:
        cur.execute(_PG_UPDATE_BALANCES, [[k.item for k, _ in rows], [k.location for k, _ in rows],
                                          [k.lot for k, _ in rows], qty, value])


_MOVE_COLUMNS = [c.name for c in stock_moves.columns if c.name != "id"]
_PG_INSERT_MOVE = (
    f"INSERT INTO stock_moves ({', '.join(_MOVE_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_MOVE_COLUMNS))}) "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key"
)
_PG_INSERT_MOVE_WITH_ID = (
    f"INSERT INTO stock_moves (id, {', '.join(_MOVE_COLUMNS)}) VALUES ({', '.join(['%s'] * (len(_MOVE_COLUMNS) + 1))}) "
    "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key"
)
# From this many moves COPY (two round trips) beats one pipelined executemany.
COPY_FROM = 4
_PG_COPY_MOVES = copy_statement(stock_moves, ["id", *_MOVE_COLUMNS])
# Reserves %s move ids from the sequence (PostgreSQL): for the COPY of ``write_moves``, and for callers that write
# rows naming moves before the moves themselves and pass the ids to ``write_moves(..., ids=...)``.
NEXT_MOVE_IDS = "SELECT nextval('stock_moves_id_seq') FROM generate_series(1, %s)"


def reserve_move_ids(conn: Connection, count: int) -> list[int]:
    """``count`` stock-move ids from the sequence (PostgreSQL), for ``write_moves(..., ids=...)``."""
    if count <= 0:
        return []
    return [move_id for (move_id,) in conn.exec_driver_sql(NEXT_MOVE_IDS, (count,))]


_KEY_IN_DETAIL = re.compile(r"\(idempotency_key\)=\((.*)\) already exists")


def _insert_moves(conn: Connection, moves: Sequence[PostedMove], ids: list[int] | None = None) -> dict[str, int]:
    """Insert ``moves``, skipping keys already taken; returns {idempotency_key: id} of the moves inserted.

    ``ids`` (PostgreSQL only): the moves' ids, reserved from the sequence beforehand."""
    if is_postgres(conn):
        dbapi_conn: Any = conn.connection.dbapi_connection
        if len(moves) >= COPY_FROM:
            # COPY (2x faster than executemany, 6x faster than the multi-row VALUES statement SQLAlchemy builds):
            # ids from the sequence first, in one round trip, unless reserved already. A key taken by a concurrent
            # transaction aborts this one: ``copy_moves`` reports it as ``MoveConflict`` (roll back, then retry).
            if ids is None:
                with dbapi_conn.cursor() as cur:
                    ids = [move_id for (move_id,) in cur.execute(NEXT_MOVE_IDS, [len(moves)]).fetchall()]
            copy_moves(dbapi_conn, moves_copy_text(moves, ids))
            return {m.idempotency_key: move_id for move_id, m in zip(ids, moves, strict=True)}
        # One prepared statement, pipelined by psycopg; a key already taken is skipped and reported by the caller.
        rows = [_move_row(m) for m in moves]
        found: dict[str, int] = {}
        with dbapi_conn.cursor() as cur:
            if ids is None:
                cur.executemany(_PG_INSERT_MOVE, [[r[c] for c in _MOVE_COLUMNS] for r in rows], returning=True)
            else:
                cur.executemany(_PG_INSERT_MOVE_WITH_ID,
                                [[i, *(r[c] for c in _MOVE_COLUMNS)] for i, r in zip(ids, rows, strict=True)],
                                returning=True)
            while True:
                found.update((key, move_id) for move_id, key in cur.fetchall())
                if not cur.nextset():
                    break
        return found
    if ids is not None:
        raise ValueError("reserved move ids are for PostgreSQL only")
    inserted = conn.execute(
        _insert(conn, stock_moves)
        .on_conflict_do_nothing(index_elements=[stock_moves.c.idempotency_key])
        .returning(stock_moves.c.id, stock_moves.c.idempotency_key),
        [_move_row(m) for m in moves],
    )
    return {r.idempotency_key: r.id for r in inserted}


def _raise_taken(exc: psycopg.errors.UniqueViolation) -> None:
    """A COPY of moves met a key (or a reversal) a concurrent transaction committed first."""
    if exc.diag.constraint_name == "uq_stock_moves_reverses":
        raise AlreadyReversed(f"a move of this batch was reversed concurrently ({exc.diag.message_detail})") from None
    found = _KEY_IN_DETAIL.search(exc.diag.message_detail or "")
    key = found.group(1) if found else "?"
    raise MoveConflict(key, ["posted concurrently by another transaction; roll back and retry"]) from None


def moves_copy_text(moves: Sequence[PostedMove], ids: Sequence[int]) -> str:
    """``moves``, each with its id from ``ids`` (reserved with ``NEXT_MOVE_IDS``), as the COPY text ``copy_moves``
    loads: every field as ``copy_text`` formats ``_move_row``'s, formatted by hand (a hot path of costing). Texts
    that repeat from move to move (items, locations, actors, reasons, references, times) are formatted once."""
    lines = []
    t = copy_text_memo()
    for move_id, m in zip(ids, moves, strict=True):
        requested = "\\N" if m.requested_value is None else fmt(m.requested_value)
        serials = copy_text("\n".join(m.serials)) if m.serials else ""
        lines.append(
            f"{move_id}\t{copy_text(m.idempotency_key)}\t{m.kind!s}\t{t(m.item)}\t{fmt(m.qty)}\t"
            f"{t(m.from_location)}\t{t(m.to_location)}\t{t(m.lot)}\t{fmt(m.value)}\t{requested}\t{t(m.actor)}\t"
            f"{t(m.reason)}\t{m.provenance!s}\t{t(m.effective_at)}\t{t(m.recorded_at)}\t{t(m.reference)}\t"
            f"{t(m.reverses)}\t{serials}\n"
        )
    return "".join(lines)


def copy_moves(raw: Any, text: str) -> None:
    """Load ``text`` (``moves_copy_text``) into ``stock_moves`` on the psycopg connection ``raw``. A key taken by a
    concurrent transaction raises ``MoveConflict`` (the transaction must be rolled back, and may be retried)."""
    try:
        copy_raw(raw, _PG_COPY_MOVES, text)
    except psycopg.errors.UniqueViolation as exc:
        _raise_taken(exc)


def _raise_lost_race(conn: Connection, missing: Sequence[PostedMove]) -> None:
    found = find_moves(conn, [m.idempotency_key for m in missing])
    for m in missing:
        original = found.get(m.idempotency_key)
        diffs = ["posted concurrently by another transaction"]
        if original is not None:
            diffs += [d for d in _move_differences(original, m)]
        raise MoveConflict(m.idempotency_key, diffs)


def _move_differences(original: PostedMove, other: PostedMove) -> list[str]:
    def show(value: object) -> str:
        return fmt_qty(value) if isinstance(value, Decimal) else str(value)

    names = ("kind", "item", "qty", "from_location", "to_location", "lot", "reference")
    return [
        f"{n}: {show(getattr(original, n))} vs {show(getattr(other, n))}"
        for n in names
        if getattr(original, n) != getattr(other, n)
    ]


def _move_row(m: PostedMove) -> dict[str, Any]:
    return {
        "idempotency_key": m.idempotency_key,
        "kind": str(m.kind),
        "item": m.item,
        "qty": m.qty,
        "from_location": m.from_location,
        "to_location": m.to_location,
        "lot": m.lot,
        "value": m.value,
        "requested_value": m.requested_value,
        "actor": m.actor,
        "reason": m.reason,
        "provenance": str(m.provenance),
        "effective_at": m.effective_at,
        "recorded_at": m.recorded_at,
        "reference": m.reference,
        "reverses": m.reverses,
        "serials": "\n".join(m.serials),
    }
