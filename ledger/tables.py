"""The ledger's tables (SQLAlchemy Core, on ``mes_common.db.metadata``); ``migrations/versions/0001_ledger.py``
creates exactly these.

Invariants held by the database itself:
- ``stock_moves`` is append-only: triggers refuse UPDATE and DELETE (PostgreSQL and SQLite).
- One move per idempotency key; a move is reversed at most once (``reverses`` is unique).
- ``stock_balances`` is derived from the moves, updated in the same transaction; never negative.
- ``locations.seq`` is the creation order (set by a trigger when omitted), so "the first location of kind X"
  is well defined.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    text,
)

from mes_common.db import Money, Qty, UtcDateTime, metadata

CODE = 64
# BIGINT ids on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
MoveId = BigInteger().with_variant(Integer(), "sqlite")


def _audit_columns() -> list[Column[object]]:
    """Who created a master record, when, and from what (import file, command); defaults for direct inserts."""
    return [
        Column("created_at", UtcDateTime(), nullable=False, server_default=text("CURRENT_TIMESTAMP")),
        Column("created_by", String(CODE), nullable=False, server_default="system"),
        Column("source", String(200), nullable=False, server_default=""),
    ]


items = Table(
    "items",
    metadata,
    Column("code", String(CODE), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("uom", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    *_audit_columns(),
)

locations = Table(
    "locations",
    metadata,
    Column("code", String(CODE), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    # Filled on insert by a trigger (see the migration) so any writer gets the creation order right.
    Column("seq", Integer(), nullable=True, unique=True),
    *_audit_columns(),
)

stock_lots = Table(
    "stock_lots",
    metadata,
    Column("item", String(CODE), ForeignKey("items.code"), nullable=False),
    Column("lot", String(CODE), nullable=False),
    Column("first_move_id", MoveId, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("item", "lot"),
)

stock_moves = Table(
    "stock_moves",
    metadata,
    Column("id", MoveId, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("kind", String(24), nullable=False),
    Column("item", String(CODE), ForeignKey("items.code"), nullable=False),
    Column("qty", Qty(), nullable=False),
    Column("from_location", String(CODE), ForeignKey("locations.code"), nullable=True),
    Column("to_location", String(CODE), ForeignKey("locations.code"), nullable=True),
    Column("lot", String(CODE), nullable=False),
    Column("value", Money(), nullable=False),
    Column("requested_value", Money(), nullable=True),
    Column("actor", String(CODE), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("provenance", String(16), nullable=False),
    Column("effective_at", UtcDateTime(), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("reference", String(200), nullable=True),
    Column("reverses", MoveId, ForeignKey("stock_moves.id"), nullable=True, unique=True),
    # Serial numbers of the units moved, newline-separated (empty when the stock is not serial-tracked).
    Column("serials", Text(), nullable=False, server_default=""),
    CheckConstraint("qty > 0", name="qty_positive"),
    CheckConstraint("value >= 0", name="value_not_negative"),
    CheckConstraint("from_location IS NOT NULL OR to_location IS NOT NULL", name="has_a_side"),
    Index("ix_stock_moves_item_effective_at", "item", "effective_at"),
    Index("ix_stock_moves_reference", "reference"),
)

stock_balances = Table(
    "stock_balances",
    metadata,
    Column("item", String(CODE), ForeignKey("items.code"), nullable=False),
    Column("location", String(CODE), ForeignKey("locations.code"), nullable=False),
    Column("lot", String(CODE), nullable=False),
    Column("qty", Qty(), nullable=False),
    Column("value", Money(), nullable=False),
    PrimaryKeyConstraint("item", "location", "lot"),
    CheckConstraint("qty >= 0", name="qty_not_negative"),
    CheckConstraint("value >= 0", name="value_not_negative"),
)

# Where each serial-numbered unit is now (``location`` NULL once it left the ledger), and which move put it there.
stock_serials = Table(
    "stock_serials",
    metadata,
    Column("item", String(CODE), ForeignKey("items.code"), nullable=False),
    Column("serial", String(CODE), nullable=False),
    Column("lot", String(CODE), nullable=False),
    Column("location", String(CODE), ForeignKey("locations.code"), nullable=True),
    Column("last_move_id", MoveId, ForeignKey("stock_moves.id"), nullable=True),
    PrimaryKeyConstraint("item", "serial"),
)

# Every move of every serial-numbered unit: the unit's full history.
stock_move_serials = Table(
    "stock_move_serials",
    metadata,
    Column("move_id", MoveId, ForeignKey("stock_moves.id"), nullable=False),
    Column("item", String(CODE), nullable=False),
    Column("serial", String(CODE), nullable=False),
    PrimaryKeyConstraint("move_id", "serial"),
    Index("ix_stock_move_serials_item_serial", "item", "serial"),
)
