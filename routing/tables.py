"""Routing tables: work centers (with their machines and terminals), routing versions, their operations,
and the release generations that let derived results (explosions, roll-ups) be cached safely.

Invariants:
- A machine or a terminal belongs to at most one work center (primary key on its code).
- ``(item, revision)`` identifies a routing version; operations are keyed by (version, number).
- ``release_generations`` holds one row per scope ("bom", "routing") whose token changes in the same
  transaction as every release or obsolescence in that scope; a cache built under another token is stale.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Date,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from mes_common.db import Qty, Rate, UtcDateTime, metadata

work_centers = Table(
    "work_centers",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("labor_rate", Rate(), nullable=False),
    Column("machine_rate", Rate(), nullable=False),
    Column("energy_tariff", Rate(), nullable=False),
    Column("cost_center", String(64), nullable=False),
    Column("supply_location", String(64), ForeignKey("locations.code"), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Rate versions: each effective from ``valid_from`` until the next version's date (a work order takes the rates
# effective on its release date; ``work_centers`` holds the latest, for listings).
work_center_rates = Table(
    "work_center_rates",
    metadata,
    Column("work_center", String(64), ForeignKey("work_centers.code"), primary_key=True),
    Column("valid_from", Date, primary_key=True),
    Column("labor_rate", Rate(), nullable=False),
    Column("machine_rate", Rate(), nullable=False),
    Column("energy_tariff", Rate(), nullable=False),
    Column("recorded_at", UtcDateTime(), nullable=False),
    Column("source", String(200), nullable=False, server_default=""),
)

work_center_machines = Table(
    "work_center_machines",
    metadata,
    Column("machine", String(64), primary_key=True),
    Column("work_center", String(64), ForeignKey("work_centers.code"), nullable=False, index=True),
)

work_center_terminals = Table(
    "work_center_terminals",
    metadata,
    Column("terminal", String(64), primary_key=True),
    Column("work_center", String(64), ForeignKey("work_centers.code"), nullable=False, index=True),
)

routing_versions = Table(
    "routing_versions",
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

routing_operations = Table(
    "routing_operations",
    metadata,
    Column("routing_id", Integer, ForeignKey("routing_versions.id"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("work_center", String(64), ForeignKey("work_centers.code"), nullable=False),
    Column("setup_min", Qty(), nullable=False),
    Column("run_min_per_unit", Qty(), nullable=False),
    Column("std_kwh_per_unit", Qty(), nullable=False),
    Column("yield_pct", Qty(), nullable=False),
    Column("quality_standard", Text, nullable=False),
    Column("rework_to", Integer, nullable=True),
    # Predecessor operation numbers ";"-separated; NULL = the previous operation by number.
    Column("after", String(200), nullable=True),
)

release_generations = Table(
    "release_generations",
    metadata,
    Column("scope", String(16), primary_key=True),
    Column("token", String(32), nullable=False),
    Column("changed_at", UtcDateTime(), nullable=False),
)
