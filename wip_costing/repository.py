"""Persistence of work orders, operation states, applied events and event problems (SQLAlchemy Core, set-based).

Works inside the caller's connection and transaction; journal lines are written by ``wip_costing.journal_writer``.
Invariants:
- Operation rows of the orders a transaction touches are locked in one sorted order (FOR UPDATE on
  PostgreSQL; SQLite serialises writers with BEGIN IMMEDIATE), so concurrent completions never deadlock
  and never complete more than is waiting.
- Everything is written with a handful of executemany statements per batch, never row by row.
- An event is recorded once: the primary key of ``operation_events`` refuses a second apply.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from psycopg.rows import namedtuple_row
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection

from ledger import repository as ledger_repo
from mes_common.db import Qty, copy_into, copy_statement, copy_text, insert_rows, is_postgres
from wip_costing.model import OpState, OrderSnapshot, OrderState, OrderStatus
from wip_costing.pools import Pool
from wip_costing.tables import event_problems, operation_events, wo_operations, wo_serials, work_orders

T = TypeVar("T")


class SnapshotCache:
    """Parsed order snapshots of one database, for the process (owned by ``wip_costing.unit_of_work.Caches``).

    Invalidation: a snapshot never changes once released, so an entry is keyed by the order and its release
    time (an order id released again after its database was emptied is another key); at ``limit`` entries the
    cache starts over."""

    def __init__(self, limit: int = 50_000) -> None:
        self.limit = limit
        self._found: dict[tuple[str, str], OrderSnapshot] = {}

    def clear(self) -> None:
        self._found.clear()

    def __len__(self) -> int:
        return len(self._found)

    def get(self, row: Any) -> OrderSnapshot:
        """The snapshot of a ``work_orders`` row (with ``id``, ``released_at`` and ``snapshot``)."""
        key = (row.id, row.released_at.isoformat())
        found = self._found.get(key)
        if found is None:
            found = OrderSnapshot.from_json(json.loads(row.snapshot))
            if len(self._found) >= self.limit:
                self._found.clear()
            self._found[key] = found
        return found


def load_snapshot(row: Any, cache: SnapshotCache | None = None) -> OrderSnapshot:
    """The frozen snapshot of a ``work_orders`` row, parsed once per ``cache`` (or now, without one)."""
    if cache is None:
        return OrderSnapshot.from_json(json.loads(row.snapshot))
    return cache.get(row)


def serial_orders(conn: Connection, serials: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(serials))
    if not wanted:
        return {}
    rows = conn.execute(select(wo_serials.c.serial, wo_serials.c.work_order).where(wo_serials.c.serial.in_(wanted)))
    return {r.serial: r.work_order for r in rows}


def lock_orders(conn: Connection, order_ids: Iterable[str], snapshots: SnapshotCache | None = None
                ) -> dict[str, tuple[OrderSnapshot, OrderState]]:
    """Lock the operation rows of ``order_ids`` (sorted) and load each order's snapshot and state."""
    wanted = sorted(set(order_ids))
    if not wanted:
        return {}
    if is_postgres(conn):
        op_rows, order_rows = _pg_lock_orders(conn, wanted)
    else:  # SQLite: writers are serialised by BEGIN IMMEDIATE, so reading is locking
        c = wo_operations.c
        query = select(wo_operations).where(c.work_order.in_(wanted)).order_by(c.work_order, c.operation)
        op_rows = list(conn.execute(query))
        order_rows = list(conn.execute(select(work_orders).where(work_orders.c.id.in_(wanted))))
    ops: dict[str, dict[int, OpState]] = {}
    for r in op_rows:
        ops.setdefault(r.work_order, {})[r.operation] = OpState(
            r.operation, r.work_center, r.received, r.completed_good, r.scrapped, r.reworked, r.written_off,
            r.setup_charged, Pool(r.fp_qty, Pool.values_from_json(json.loads(r.fp_values))),
            Pool(r.rw_qty, Pool.values_from_json(json.loads(r.rw_values))),
        )
    out: dict[str, tuple[OrderSnapshot, OrderState]] = {}
    for r in order_rows:
        snap = load_snapshot(r, snapshots)
        status = OrderStatus(r.status)
        out[r.id] = (snap, OrderState(r.id, status, ops.get(r.id, {}), r.produced))
    return out


_PG_LOCK_OPS = (
    f"SELECT {', '.join(c.name for c in wo_operations.columns)} FROM wo_operations WHERE work_order = ANY(%s) "
    "ORDER BY work_order, operation FOR UPDATE"
)
_PG_ORDERS = (
    "SELECT id, status, produced, released_at, snapshot FROM work_orders WHERE id = ANY(%s)"
)


def _pg_lock_orders(conn: Connection, wanted: list[str]) -> tuple[list[Any], list[Any]]:
    """Both queries in one round trip (a psycopg pipeline; the server still runs them in order: locks first).
    One array parameter: the statements' text does not depend on how many orders the batch has."""
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.pipeline():
        lock = raw.cursor(row_factory=namedtuple_row)
        lock.execute(_PG_LOCK_OPS, [wanted])
        load = raw.cursor(row_factory=namedtuple_row)
        load.execute(_PG_ORDERS, [wanted])
    with lock, load:
        return lock.fetchall(), load.fetchall()


def recorded_events(conn: Connection, event_ids: Iterable[str]) -> dict[str, str]:
    """Fingerprints of the events among ``event_ids`` already applied."""
    wanted = sorted(set(event_ids))
    found: dict[str, str] = {}
    if is_postgres(conn) and wanted:
        # One array parameter: the plan does not depend on how many ids the batch has.
        raw = conn.connection.driver_connection
        assert raw is not None
        rows = raw.execute(_PG_RECORDED, [wanted])
        return {event_id: fingerprint for event_id, fingerprint in rows}
    c = operation_events.c
    for start in range(0, len(wanted), 2000):
        chunk = wanted[start:start + 2000]
        for r in conn.execute(select(c.event_id, c.fingerprint).where(c.event_id.in_(chunk))):
            found[r.event_id] = r.fingerprint
    return found


_PG_RECORDED = "SELECT event_id, fingerprint FROM operation_events WHERE event_id = ANY(%s)"


def recorded_events_with(conn: Connection, event_ids: Iterable[str], move_count: int, then: Callable[[], T]
                         ) -> tuple[dict[str, str], list[int], T]:
    """``recorded_events``, ``move_count`` stock-move ids reserved from the ledger's sequence (PostgreSQL only; see
    ``ledger.repository.write_moves(ids=...)``) and ``then()`` (the balance locks). On PostgreSQL in one round
    trip (a pipeline, in which ``then``'s own pipeline nests; the server runs them in this order)."""
    if not is_postgres(conn):
        if move_count > 0:
            raise ValueError("reserved move ids are for PostgreSQL only")
        recorded = recorded_events(conn, event_ids)
        return recorded, [], then()
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.pipeline():
        found = raw.cursor()
        found.execute(_PG_RECORDED, [sorted(set(event_ids))])
        ids = raw.cursor()
        if move_count > 0:
            ids.execute(ledger_repo.NEXT_MOVE_IDS, [move_count])
        result = then()
    with found, ids:
        return dict(found.fetchall()), [i for (i,) in ids.fetchall()] if move_count > 0 else [], result


def _op_row(order: str, s: OpState) -> dict[str, Any]:
    return {
        "b_work_order": order, "b_operation": s.operation, "work_center": s.work_center,
        "received": s.received, "completed_good": s.completed_good, "scrapped": s.scrapped,
        "reworked": s.reworked, "written_off": s.written_off, "setup_charged": s.setup_charged,
        "fp_qty": s.first_pass.qty, "fp_value": s.first_pass.value, "fp_values": json.dumps(s.first_pass.to_json()),
        "rw_qty": s.rework.qty, "rw_value": s.rework.value, "rw_values": json.dumps(s.rework.to_json()),
    }


def insert_order(conn: Connection, snapshot: OrderSnapshot, state: OrderState, *, released_on: Any,
                 released_at: datetime, due_date: Any = None, serials: Sequence[str] = ()) -> None:
    conn.execute(insert(work_orders).values(
        id=snapshot.order_id, item=snapshot.item, qty=snapshot.qty, due_date=due_date,
        receiving_location=snapshot.receiving_location, status=state.status.value,
        bom_revision=snapshot.bom_revision, routing_revision=snapshot.routing_revision, released_on=released_on,
        released_at=released_at, closed_at=None, produced=state.produced,
        snapshot=json.dumps(snapshot.to_json()),
    ))
    rows = []
    for s in state.ops.values():
        row = _op_row(snapshot.order_id, s)
        row["work_order"] = row.pop("b_work_order")
        row["operation"] = row.pop("b_operation")
        rows.append(row)
    conn.execute(insert(wo_operations), rows)
    if serials:
        conn.execute(insert(wo_serials), [{"serial": s, "work_order": snapshot.order_id} for s in serials])


Header = tuple[OrderStatus, Any]  # an order's (status, produced), as ``lock_orders`` read it


def headers(orders: Mapping[str, tuple[OrderSnapshot, OrderState]]) -> dict[str, Header]:
    """Each locked order's header as read: ``save_states`` writes only the headers that differ from it."""
    return {order_id: (state.status, state.produced) for order_id, (_snap, state) in orders.items()}


def save_states(conn: Connection, states: Sequence[OrderState], loaded: Mapping[str, Header] | None = None,
                closed_at: datetime | None = None) -> None:
    """Write the quantities and pools of ``states`` (already locked by ``lock_orders``), and the headers (status,
    produced) that differ from ``loaded`` (all of them without it)."""
    if not states:
        return
    if loaded is None:
        changed = list(states)
    else:
        changed = [st for st in states if (st.status, st.produced) != loaded.get(st.order_id)]
    if is_postgres(conn):
        _save_states_pg(conn, states, changed)
    else:
        _update_ops(conn, states)
        wo_stmt = update(work_orders).where(work_orders.c.id == bindparam("b_id")).values(
            status=bindparam("status"), produced=bindparam("produced"),
        )
        if changed:
            conn.execute(wo_stmt, [{"b_id": st.order_id, "status": st.status.value, "produced": st.produced}
                                   for st in changed])
    if closed_at is not None:
        conn.execute(update(work_orders).where(work_orders.c.id.in_([s.order_id for s in states]))
                     .values(closed_at=closed_at))


_OP_COLUMNS = ("received", "completed_good", "scrapped", "reworked", "written_off", "setup_charged", "fp_qty",
               "fp_value", "fp_values", "rw_qty", "rw_value", "rw_values")
_OP_TYPES = ("numeric", "numeric", "numeric", "numeric", "numeric", "boolean", "numeric", "numeric", "text",
             "numeric", "numeric", "text")
# One statement text whatever the number of rows (arrays, not a VALUES list): psycopg converts it once and the
# server can keep it prepared.
_PG_UPDATE_OPS = (
    f"UPDATE wo_operations AS w SET {', '.join(f'{c} = v.{c}' for c in _OP_COLUMNS)} "
    f"FROM unnest(%s::text[], %s::int[], {', '.join(f'%s::{t}[]' for t in _OP_TYPES)}) "
    f"AS v(work_order, operation, {', '.join(_OP_COLUMNS)}) "
    "WHERE w.work_order = v.work_order AND w.operation = v.operation"
)
_PG_UPDATE_ORDERS = (
    "UPDATE work_orders AS w SET status = v.status, produced = v.produced "
    "FROM unnest(%s::text[], %s::text[], %s::numeric[]) AS v(id, status, produced) WHERE w.id = v.id"
)
_QTY = Qty()


def _save_states_pg(conn: Connection, states: Sequence[OrderState], changed: Sequence[OrderState]) -> None:
    """Every operation row of ``states`` in one UPDATE, the changed order headers in another, both in one
    round trip (a psycopg pipeline)."""
    names = ("b_work_order", "b_operation", *_OP_COLUMNS)  # keys of ``_op_row``, in the statement's order
    rows = [_op_row(st.order_id, s) for st in states for s in st.ops.values()]
    columns = [[row[name] for row in rows] for name in names]
    produced = [_QTY.exact(st.produced) for st in changed]  # what the Qty column type checks on the other paths
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.pipeline(), raw.cursor() as cur:
        cur.execute(_PG_UPDATE_OPS, columns)
        if changed:
            cur.execute(_PG_UPDATE_ORDERS, [[st.order_id for st in changed], [st.status.value for st in changed],
                                            produced])


def _update_ops(conn: Connection, states: Sequence[OrderState]) -> None:
    c = wo_operations.c
    op_stmt = (
        update(wo_operations)
        .where(c.work_order == bindparam("b_work_order"), c.operation == bindparam("b_operation"))
        .values({name: bindparam(name) for name in (
            "work_center", "received", "completed_good", "scrapped", "reworked", "written_off", "setup_charged",
            "fp_qty", "fp_value", "fp_values", "rw_qty", "rw_value", "rw_values")})
    )
    conn.execute(op_stmt, [_op_row(st.order_id, s) for st in states for s in st.ops.values()])


EVENT_COLUMNS = ("event_id", "fingerprint", "work_order", "operation", "provenance", "payload", "source_time",
                 "recorded_at")


def insert_events(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Record applied events (tuples in ``EVENT_COLUMNS`` order); the primary key refuses a second apply."""
    if not rows:
        return
    if not is_postgres(conn):
        insert_rows(conn, operation_events, EVENT_COLUMNS, rows)
        return
    copy_into(conn, operation_events, EVENT_COLUMNS, events_copy_text(rows))


def events_copy_text(rows: list[tuple[Any, ...]]) -> str:
    """``rows`` (``EVENT_COLUMNS`` order) as COPY text: each field as ``copy_text`` formats it, for the types these
    rows hold (one line per event)."""
    text = copy_text
    lines = []
    last: Any = None
    recorded = ""
    for event_id, fingerprint, order, operation, provenance, payload, source_time, recorded_at in rows:
        if recorded_at is not last:  # the batch's one recording time, formatted once
            last, recorded = recorded_at, text(recorded_at)
        lines.append(f"{text(event_id)}\t{text(fingerprint)}\t{text(order)}\t{text(operation)}\t"
                     f"{text(provenance)}\t{text(payload)}\t{text(source_time)}\t{recorded}\n")
    return "".join(lines)


EVENTS_COPY = copy_statement(operation_events, EVENT_COLUMNS)


def insert_problems(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(event_problems), rows)



def order_row(conn: Connection, order_id: str) -> Any:
    return conn.execute(select(work_orders).where(work_orders.c.id == order_id)).first()
