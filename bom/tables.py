"""BOM tables: versions (state, effectivity) and their lines.

Invariants:
- ``(item, revision)`` identifies a version; lines are keyed by (version, line number) and keep the
  order they were given in. Released lines are never updated or deleted (a change is a new revision).
- Components and parents are items of the ledger (foreign keys).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Date, ForeignKey, Integer, String, Table, UniqueConstraint

from mes_common.db import Qty, UtcDateTime, metadata

bom_versions = Table(
    "bom_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item", String(64), ForeignKey("items.code"), nullable=False),
    Column("revision", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("valid_from", Date, nullable=False),
    Column("valid_to", Date, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("released_at", UtcDateTime(), nullable=True),
    Column("obsoleted_at", UtcDateTime(), nullable=True),
    UniqueConstraint("item", "revision"),
)

bom_lines = Table(
    "bom_lines",
    metadata,
    Column("version_id", Integer, ForeignKey("bom_versions.id"), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("component", String(64), ForeignKey("items.code"), nullable=False, index=True),
    Column("qty_per", Qty(), nullable=False),
    Column("uom", String(16), nullable=False),
    Column("scrap_pct", Qty(), nullable=False),
    Column("operation", Integer, nullable=True),
    Column("phantom", Boolean, nullable=False),
    Column("fixed_qty", Boolean, nullable=False),
)
