"""Balance checkpoints: sums of an append-only table as of any moment, at a cost that does not grow with history.

A ``Source`` is an append-only table of dated rows (``effective_at``) with an increasing integer id (the cost
journal, the stock moves) and a rule (``Source.sums``) turning its rows into signed values per key. A checkpoint
of day D holds, per key, the sum of the rows effective before the end of D (``until``, UTC midnight) whose id is
at most its watermark ``through_id``. The build (``refresh``) runs beside the writers and never changes a row it
wrote; a row that arrives later but is effective on or before a checkpointed day (a back-dated event, a spool
drained after an outage) is written once into the corrections table, tagged with the watermark of the build that
found it. So, with ``W`` the latest build's watermark, the balance as of T is exactly

    checkpoint(D)                                       D: the latest day with until(D) <= T
  + corrections of days <= D found after D's build       through_id in (through(D), W]
  + rows with id > W effective before until(D)           (the rows written since the latest build)
  + rows effective in [until(D), T]                      (at most the rest of one day, and the future)

which equals the plain sum of every row effective at or before T (``plain_sums``; the tests prove it). Keys whose
values are all zero are left out of a checkpoint (a closed work order drops out of WIP without a scan), unless
``Source.keep_zero`` says otherwise.

The tables: ``checkpoint_days`` and ``checkpoint_state`` are shared; each source has a pair made by
``checkpoint_tables`` (its checkpoints and its corrections). Building them: ``mes_common.checkpoint_build``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    bindparam,
    func,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeEngine

from mes_common.db import UtcDateTime, metadata

SOURCE = 32
# One row per checkpointed day of a source: rows effective before ``until`` with id <= ``through_id``.
checkpoint_days = Table(
    "checkpoint_days",
    metadata,
    Column("source", String(SOURCE), nullable=False),
    Column("day", Date(), nullable=False),
    Column("until", UtcDateTime(), nullable=False),
    Column("through_id", BigInteger(), nullable=False),
    Column("built_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("source", "day"),
)
# Per source: the latest build's watermark and the last day it looked at (``covered_day``).
checkpoint_state = Table(
    "checkpoint_state",
    metadata,
    Column("source", String(SOURCE), primary_key=True),
    Column("through_id", BigInteger(), nullable=False),
    Column("covered_day", Date(), nullable=True),
    Column("built_at", UtcDateTime(), nullable=False),
)

class CheckpointTables(NamedTuple):
    checkpoints: Table  # ``day``, the keys, the values
    corrections: Table  # ``through_id``, ``day``, the keys, the values


def checkpoint_tables(name: str, keys: Sequence[Column[Any]], values: Sequence[Column[Any]],
                      id_type: TypeEngine[Any]) -> CheckpointTables:
    """A source's pair of tables, ``{name}_checkpoints`` and ``{name}_checkpoint_corrections``: the day (and, for a
    correction, the watermark of the build that found it, of ``id_type`` like the source's ids), then ``keys`` and
    ``values`` (copied: a column belongs to one table). Index names are those of migration 0010: the checkpoints by
    day and first key, the corrections by watermark."""
    def columns() -> list[Column[Any]]:
        return [Column(c.name, c.type, nullable=c.nullable) for c in (*keys, *values)]

    checkpoints = Table(
        f"{name}_checkpoints", metadata,
        Column("day", Date(), nullable=False),
        *columns(),
        Index(f"ix_{name}_checkpoints_day_{keys[0].name}", "day", keys[0].name),
    )
    corrections = Table(
        f"{name}_checkpoint_corrections", metadata,
        Column("through_id", id_type, nullable=False),
        Column("day", Date(), nullable=False),
        *columns(),
        Index(f"ix_{name}_checkpoint_corrections_through_id", "through_id"),
    )
    return CheckpointTables(checkpoints, corrections)


Key = tuple[Any, ...]
Values = tuple[Decimal, ...]
# (conditions on the source's rows, key filter, with the rows' effective_at as a last key) -> a SELECT of the key
# columns (labelled as ``Source.keys``), [effective_at,] and the summed values (labelled as ``Source.values``),
# grouped by key.
SumsQuery = Callable[[Sequence[Any], Mapping[str, Any], bool], Any]


@dataclass(frozen=True)
class Source:
    name: str
    rows: Table  # the append-only table; has ``id`` and ``effective_at``
    checkpoints: Table  # ``day``, the keys, the values
    corrections: Table  # ``through_id``, ``day``, the keys, the values
    keys: tuple[str, ...]
    values: tuple[str, ...]
    value_types: tuple[Callable[[], TypeEngine[Any]], ...]
    sums: SumsQuery
    # A checkpoint row whose values are all zero is kept when this says so (e.g. an account's total).
    keep_zero: Callable[[Key], bool] = field(default=lambda _key: False)
    # Block-range (BRIN) indexes on ``effective_at`` (PostgreSQL): a range of new rows is skipped by the as-of
    # queries only once summarised, so each build summarises the new ones (the cost of the rows since the last).
    brin_indexes: tuple[str, ...] = ()
    # The reading statements, built once per shape (``statement``); never stale: they hold parameters, not values.
    _statements: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def statement(self, shape: Any, build: Callable[[], Any]) -> Any:
        found = self._statements.get(shape)
        if found is None:
            found = self._statements[shape] = build()
        return found


def day_until(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), clock(0), UTC)


def add_sums(into: dict[Key, list[Decimal]], key: Key, values: Sequence[Any]) -> None:
    found = into.get(key)
    if found is None:
        into[key] = [Decimal(v or 0) for v in values]
    else:
        for n, v in enumerate(values):
            if v:
                found[n] += v


def read_sums(conn: Connection, source: Source, query: Any, into: dict[Key, list[Decimal]],
               params: Mapping[str, Any] | None = None) -> int:
    """Add the rows of ``query`` (keys then values) into ``into``; returns how many rows it read."""
    width = len(source.keys)
    count = 0
    for row in conn.execute(query, dict(params or {})):
        add_sums(into, tuple(row[:width]), row[width:])
        count += 1
    return count


def _key_filter(table: Table, key_filter: Mapping[str, Any]) -> list[Any]:
    return [table.c[name] == value for name, value in key_filter.items()]


def _kept(source: Source, sums: Mapping[Key, Sequence[Decimal]]) -> dict[Key, Values]:
    return {k: tuple(v) for k, v in sums.items() if any(v) or source.keep_zero(k)}


# ---------------------------------------------------------------------------------------------- reading


def plain_sums(conn: Connection, source: Source, as_of: datetime | None = None,
               key_filter: Mapping[str, Any] | None = None) -> dict[Key, Values]:
    """The reference: every row effective at or before ``as_of`` (None: all), summed per key (keys whose sums are
    all zero left out, unless ``Source.keep_zero``)."""
    kf = dict(key_filter or {})
    statement = source.statement(("plain", as_of is not None, tuple(kf)), lambda: _plain(source, as_of, kf))
    sums: dict[Key, list[Decimal]] = {}
    read_sums(conn, source, statement, into=sums, params=_params(kf, as_of=as_of))
    return _kept(source, sums)


def sums_as_of(conn: Connection, source: Source, as_of: datetime | None = None,
               key_filter: Mapping[str, Any] | None = None) -> dict[Key, Values]:
    """``plain_sums`` through the latest checkpoint at or before ``as_of`` (see the module's formula): two
    statements, whose cost depends on the number of keys and on the rows of one day, not on the history."""
    kf = dict(key_filter or {})
    bounded = as_of is not None
    meta = source.statement(("meta", bounded), lambda: _meta(source, bounded))
    found = conn.execute(meta, {"as_of": as_of} if bounded else {}).first()
    if found is None:  # before the first checkpoint (or none built yet): rows of at most the first day
        return plain_sums(conn, source, as_of, kf)
    statement = source.statement(("as_of", bounded, tuple(kf)), lambda: _as_of(source, bounded, kf))
    sums: dict[Key, list[Decimal]] = {}
    params = _params(kf, as_of=as_of, cp_day=found.day, cp_until=found.until, cp_through=found.through_id,
                     latest=found.latest, newest=max(found.latest, found.newest or 0))
    read_sums(conn, source, statement, into=sums, params=params)
    return _kept(source, sums)


# The statements are built once per shape (bounded or not, which keys filtered) with bound parameters: building
# one costs more Python than running it.

def _params(key_filter: Mapping[str, Any], **values: Any) -> dict[str, Any]:
    return {**values, **{f"f_{name}": value for name, value in key_filter.items()}}


def _bound_filter(key_filter: Mapping[str, Any]) -> dict[str, Any]:
    return {name: bindparam(f"f_{name}") for name in key_filter}


def _plain(source: Source, as_of: datetime | None, key_filter: Mapping[str, Any]) -> Any:
    where = [] if as_of is None else [source.rows.c.effective_at <= bindparam("as_of")]
    return source.sums(where, _bound_filter(key_filter), False)


def _meta(source: Source, bounded: bool) -> Any:
    days, state = checkpoint_days.c, checkpoint_state.c
    # The largest id now bounds the rows written since the latest build from above: a closed id range is
    # estimated well, so the planner reads it by primary key (an open ``id > latest`` made it scan by time).
    newest = select(func.max(source.rows.c.id)).scalar_subquery().label("newest")
    meta = (select(days.day, days.until, days.through_id, state.through_id.label("latest"), newest)
            .join_from(checkpoint_days, checkpoint_state, state.source == days.source)
            .where(days.source == source.name))
    if bounded:
        meta = meta.where(days.until <= bindparam("as_of"))
    return meta.order_by(days.day.desc()).limit(1)


def _as_of(source: Source, bounded: bool, key_filter: Mapping[str, Any]) -> Any:
    kf = _bound_filter(key_filter)
    cp, corr, rows = source.checkpoints, source.corrections, source.rows.c
    names = [*source.keys, *source.values]
    until: Any = bindparam("cp_until")
    later = [rows.effective_at >= until] + ([rows.effective_at <= bindparam("as_of")] if bounded else [])
    parts = union_all(
        select(*(cp.c[n] for n in names)).where(cp.c.day == bindparam("cp_day"), *_key_filter(cp, kf)),
        select(*(corr.c[n] for n in names)).where(
            corr.c.day <= bindparam("cp_day"), corr.c.through_id > bindparam("cp_through"),
            corr.c.through_id <= bindparam("latest"), *_key_filter(corr, kf)),
        source.sums([rows.id > bindparam("latest"), rows.id <= bindparam("newest"), rows.effective_at < until], kf,
                    False),
        source.sums(later, kf, False),
    ).subquery()
    return select(
        *(parts.c[k] for k in source.keys),
        *(type_coerce(func.sum(parts.c[v]), t()).label(v) for v, t in zip(source.values, source.value_types,
                                                                             strict=True)),
    ).group_by(*(parts.c[k] for k in source.keys))
