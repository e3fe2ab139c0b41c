"""Collectors' health as they report it to the service (``POST /collectors/health``), one row per machine.

Kept in the database, not in a process, so every API process behind a balancer answers the same. A report
replaces the machine's previous one (latest wins); figures are health figures in float seconds, never money.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Column, Float, Integer, String, Table, Text, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from mes_common.db import UtcDateTime, metadata, utcnow

collector_health = Table(
    "collector_health",
    metadata,
    Column("machine", String(64), primary_key=True),
    Column("reported_by", String(128), nullable=False),
    Column("connected", Boolean, nullable=False),
    Column("last_value_age_s", Float, nullable=True),  # float-ok: seconds
    Column("spool_depth", Integer, nullable=False),
    Column("events_per_s", Float, nullable=False),  # float-ok: a rate
    Column("error", Text, nullable=True),
    Column("reported_at", UtcDateTime(), nullable=False),
)


@dataclass(frozen=True)
class MachineHealth:
    machine: str
    connected: bool
    last_value_age_s: float | None  # float-ok: seconds
    spool_depth: int
    events_per_s: float  # float-ok: a rate
    error: str | None = None


def record_health(conn: Connection, reports: Sequence[MachineHealth], reported_by: str) -> datetime:
    """Store each machine's latest report (replacing the one before)."""
    now = utcnow()
    latest = {r.machine: r for r in reports}  # a machine named twice: its last report counts (one row each)
    rows = [{"machine": r.machine, "reported_by": reported_by, "connected": r.connected,
             "last_value_age_s": r.last_value_age_s, "spool_depth": r.spool_depth, "events_per_s": r.events_per_s,
             "error": r.error, "reported_at": now} for _, r in sorted(latest.items())]
    if not rows:
        return now
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(collector_health).values(rows)
    columns = {name: stmt.excluded[name] for name in rows[0] if name != "machine"}
    conn.execute(stmt.on_conflict_do_update(index_elements=["machine"], set_=columns))
    return now


def machine_health(conn: Connection) -> list[dict[str, Any]]:
    """Every machine's latest report, by machine, with its age."""
    now = utcnow()
    out = []
    for r in conn.execute(select(collector_health).order_by(collector_health.c.machine)):
        out.append({"machine": r.machine, "connected": r.connected, "last_value_age_s": r.last_value_age_s,
                    "spool_depth": r.spool_depth, "events_per_s": r.events_per_s, "error": r.error,
                    "reported_by": r.reported_by, "reported_at": r.reported_at.isoformat(),
                    "report_age_s": round((now - r.reported_at).total_seconds(), 3)})
    return out
