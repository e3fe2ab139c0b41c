"""WIP and costing tables (SQLAlchemy Core, on ``mes_common.db.metadata``); ``migrations/versions/0003_wip_costing.py``
creates exactly these.

Invariants held by the database itself:
- ``operation_events.event_id`` is the primary key: an event is applied at most once, across processes.
- ``journal_lines`` is append-only: triggers refuse UPDATE, DELETE and (PostgreSQL) TRUNCATE. It carries no
  foreign keys, on purpose and measured (``benchmarks/foreign_keys.py``: batches of 1,000 and 100 events applied
  in alternating pairs with and without each key; three runs on 2026-12-05 on a host loaded by other work, medians
  of the per-pair slow-down): ``work_order`` -> ``work_orders`` +4.6 / +8.2 / +21.8 %, ``stock_move_id`` ->
  ``stock_moves`` (deferred: the streaming writer loads lines before their moves) +7.3 / +5.2 / +11.9 %,
  ``event_id`` -> ``operation_events`` (deferred) +12.7 / +23.3 / -1.4 %: each costs 5 % of the event path or more
  (a check per line, ~7 lines per event). The lines are written only by ``apply_events`` / close, in the same
  transaction as the order, the event and the moves they name (``wip_costing.batch_writer``).
- ``operation_events.work_order`` refers to ``work_orders`` (one check per event: -1.8 / +2.2 / +16.7 % in the
  same runs, median +2.2 %; migration ``0007_events_order_fk``).
- ``wo_operations`` holds one row per (order, operation): the quantities and the two waiting pools; its rows
  are the lock every completion and every close takes (sorted, FOR UPDATE on PostgreSQL).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from mes_common.db import Money, Qty, UtcDateTime, metadata
from wip_costing.pools import Element

CODE = 64
EVENT_ID = 200
LineId = BigInteger().with_variant(Integer(), "sqlite")

work_orders = Table(
    "work_orders",
    metadata,
    Column("id", String(CODE), primary_key=True),
    Column("item", String(CODE), ForeignKey("items.code"), nullable=False),
    Column("qty", Qty(), nullable=False),
    Column("due_date", Date(), nullable=True),
    Column("receiving_location", String(CODE), ForeignKey("locations.code"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("bom_revision", String(32), nullable=True),
    Column("routing_revision", String(32), nullable=False),
    Column("released_on", Date(), nullable=False),
    Column("released_at", UtcDateTime(), nullable=False),
    Column("closed_at", UtcDateTime(), nullable=True),
    Column("produced", Qty(), nullable=False),
    # The frozen snapshot (operations, rates, materials per operation) as JSON; never updated.
    Column("snapshot", Text(), nullable=False),
    CheckConstraint("qty > 0", name="qty_positive"),
)

wo_operations = Table(
    "wo_operations",
    metadata,
    Column("work_order", String(CODE), ForeignKey("work_orders.id"), nullable=False),
    Column("operation", Integer(), nullable=False),
    Column("work_center", String(CODE), nullable=False),
    Column("received", Qty(), nullable=False),
    Column("completed_good", Qty(), nullable=False),
    Column("scrapped", Qty(), nullable=False),
    Column("reworked", Qty(), nullable=False),
    Column("written_off", Qty(), nullable=False),
    Column("setup_charged", Boolean(), nullable=False),
    Column("fp_qty", Qty(), nullable=False),
    Column("fp_value", Money(), nullable=False),
    Column("fp_values", Text(), nullable=False),
    Column("rw_qty", Qty(), nullable=False),
    Column("rw_value", Money(), nullable=False),
    Column("rw_values", Text(), nullable=False),
    PrimaryKeyConstraint("work_order", "operation"),
    CheckConstraint("fp_qty >= 0 AND rw_qty >= 0", name="waiting_not_negative"),
)

wo_serials = Table(
    "wo_serials",
    metadata,
    Column("serial", String(CODE), primary_key=True),
    Column("work_order", String(CODE), ForeignKey("work_orders.id"), nullable=False, index=True),
)

operation_events = Table(
    "operation_events",
    metadata,
    Column("event_id", String(EVENT_ID), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("work_order", String(CODE), ForeignKey("work_orders.id"), nullable=False),
    Column("operation", Integer(), nullable=False),
    Column("provenance", String(16), nullable=False),
    Column("payload", Text(), nullable=False),
    Column("source_time", UtcDateTime(), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Index("ix_operation_events_work_order", "work_order"),
)

# Rejected and conflicting submissions: kept, listable, never dropped (no unique key: a rejected id may be
# sent again once the cause is fixed, and is then applied).
event_problems = Table(
    "event_problems",
    metadata,
    Column("id", LineId, primary_key=True, autoincrement=True),
    Column("event_id", String(EVENT_ID), nullable=True),
    Column("status", String(16), nullable=False),
    Column("reason", Text(), nullable=False),
    Column("fingerprint", String(64), nullable=True),
    Column("payload", Text(), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Index("ix_event_problems_status", "status"),
    Index("ix_event_problems_event_id", "event_id"),
)

journal_lines = Table(
    "journal_lines",
    metadata,
    Column("id", LineId, primary_key=True, autoincrement=True),
    Column("entry", String(EVENT_ID + 20), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("event_id", String(EVENT_ID), nullable=True),
    Column("account", String(32), nullable=False),
    Column("debit", Money(), nullable=False),
    Column("credit", Money(), nullable=False),
    Column("work_order", String(CODE), nullable=False),
    Column("operation", Integer(), nullable=True),
    Column("work_center", String(CODE), nullable=True),
    Column("provenance", String(16), nullable=True),
    Column("item", String(CODE), nullable=True),
    Column("stock_move_id", LineId, nullable=True),
    Column("effective_at", UtcDateTime(), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    # The line's amount by cost element, on the line's side (NULL: none of it); set on WIP, SCRAP-LOSS and
    # variance lines, where the parts sum to the amount.
    *(Column(element.value, Money(), nullable=True) for element in Element),
    CheckConstraint("debit >= 0 AND credit >= 0", name="amounts_not_negative"),
    # BRIN on PostgreSQL: lines arrive in about time order, and a block-range index costs next to nothing per line
    # (the WIP and balance sums read most lines anyway; the export reads a time range).
    Index("ix_journal_lines_effective_at", "effective_at", postgresql_using="brin"),
    Index("ix_journal_lines_work_order", "work_order"),
)

# Work orders scanned at a machine's terminal: the collectors' source of the work order for machines without a
# job tag. Append-only (triggers refuse UPDATE and DELETE); a machine's current order is its latest scan.
machine_scans = Table(
    "machine_scans",
    metadata,
    Column("id", LineId, primary_key=True, autoincrement=True),
    Column("machine", String(CODE), nullable=False),
    Column("work_order", String(CODE), ForeignKey("work_orders.id"), nullable=False),
    Column("operator", String(CODE), nullable=True),
    Column("terminal", String(CODE), nullable=True),
    Column("scanned_at", UtcDateTime(), nullable=False),
    Index("ix_machine_scans_machine_id", "machine", "id"),
)
