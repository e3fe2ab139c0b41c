"""Posting stock moves through the database: ``post_moves`` (a batch, all or nothing, idempotent) and
``reverse_move``. Every function works inside the caller's transaction.

Invariants:
- A posting is all or nothing: any refusal (master data, idempotency conflict, serials, stock) is raised before
  the first write of the batch.
- Balance (and serial) rows are locked first, in one sorted sweep (``ledger.repository.lock_balances``); the
  idempotency lookup runs after the locks, so a retry racing its original sees it and returns it. A key used
  twice in one batch must carry the same content.
- A move dated in the past is refused when it would leave a balance negative at any later moment
  (``ledger.history``), not only now.
- Balances change by the pure rules of ``ledger.posting`` on the locked rows; ``ledger.repository.write_moves``
  then inserts the moves and updates the changed balances in the same transaction.
- A move is reversed at most once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from ledger.history import check_history
from ledger.master import check_master_data
from ledger.model import AlreadyReversed, MoveConflict, MoveRequest, PostedMove
from ledger.posting import move_serials, post, reversal_of
from ledger.queries import find_moves, get_move
from ledger.repository import lock_balances, write_moves
from ledger.serials import lock_serials, write_serials
from ledger.tables import stock_moves
from mes_common.db import utcnow


def post_moves(conn: Connection, requests: Sequence[MoveRequest]) -> list[PostedMove]:
    """Post ``requests`` in order, all or nothing; a retry (same key, same content) returns the original move.

    Raises ``MoveConflict`` (same key, other content), ``UnknownItem``/``UnknownLocation``, ``InvalidMove``,
    ``SerialUnavailable`` or ``InsufficientStock`` (naming the quantity available) before anything is written.
    """
    return [move for move, _created in _post(conn, requests)]


def _post(conn: Connection, requests: Sequence[MoveRequest]) -> list[tuple[PostedMove, bool]]:
    if not requests:
        return []
    first: dict[str, MoveRequest] = {}
    for r in requests:
        seen = first.setdefault(r.idempotency_key, r)
        if seen is not r and seen != r:
            raise MoveConflict(r.idempotency_key, ["used twice in one batch with different content"])
    check_master_data(conn, requests)
    balances = lock_balances(conn, [k for r in requests for k in r.balance_keys()])
    serial_states = lock_serials(conn, [(r.item, s) for r in requests for s in r.serials])
    existing = find_moves(conn, first)
    for r in requests:
        original = existing.get(r.idempotency_key)
        if original is not None:
            diffs = original.differences(r)
            if diffs:
                raise MoveConflict(r.idempotency_key, diffs)
    working = dict(balances)
    now = utcnow()
    posted: dict[str, PostedMove] = {}
    for r in requests:
        if r.idempotency_key not in existing and r.idempotency_key not in posted:
            move_serials(serial_states, r)
            posted[r.idempotency_key] = post(working, r, recorded_at=now)
    new = list(posted.values())
    check_history(conn, new, {key: balance.qty for key, balance in balances.items()})
    changed = {k: v for k, v in working.items() if balances.get(k) != v}
    ids = write_moves(conn, new, changed)
    for move, move_id in zip(new, ids, strict=True):
        posted[move.idempotency_key] = move.with_id(move_id)
    if serial_states:
        write_serials(conn, [posted[m.idempotency_key] for m in new], serial_states)
    result = []
    created: set[str] = set()
    for r in requests:
        key = r.idempotency_key
        if key in existing:
            result.append((existing[key], False))
        else:
            result.append((posted[key], key not in created))
            created.add(key)
    return result


def reverse_move(
    conn: Connection, move_id: int, actor: str, reason: str, *, effective_at: datetime | None = None
) -> PostedMove:
    """Post the opposite of move ``move_id`` at the value it moved; a move is reversed at most once."""
    original = get_move(conn, move_id)
    already = conn.execute(select(stock_moves.c.id).where(stock_moves.c.reverses == move_id)).scalar()
    if already is not None:
        raise AlreadyReversed(f"stock move {move_id} was already reversed by move {already}")
    [(move, created)] = _post(conn, [reversal_of(original, actor=actor, reason=reason, effective_at=effective_at)])
    if not created:
        raise AlreadyReversed(f"stock move {move_id} was already reversed by move {move.id}")
    return move
