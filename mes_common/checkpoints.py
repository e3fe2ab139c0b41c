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

The watermark: every row with id <= W has been committed (or rolled back) before the build reads. SQLite
serialises writers (``BEGIN IMMEDIATE``), so the build takes the largest id in its own transaction. On
PostgreSQL ids are handed out before commit and commits come in any order, so the build first reads the id
sequence, then waits until every transaction open at that moment has ended (their virtual transaction ids in
``pg_locks``, the wait ``CREATE INDEX CONCURRENTLY`` makes), and only then reads; concurrent builds are
serialised by an advisory lock. Rows are never locked, and the writers never wait for a build.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    PrimaryKeyConstraint,
    String,
    Table,
    bindparam,
    func,
    insert,
    select,
    text,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import TypeEngine

from mes_common.db import UtcDateTime, copy_into, copy_text, insert_rows, is_postgres, metadata, utcnow

log = logging.getLogger(__name__)

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


def _until(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), clock(0), UTC)


def _add(into: dict[Key, list[Decimal]], key: Key, values: Sequence[Any]) -> None:
    found = into.get(key)
    if found is None:
        into[key] = [Decimal(v or 0) for v in values]
    else:
        for n, v in enumerate(values):
            if v:
                found[n] += v


def _read_sums(conn: Connection, source: Source, query: Any, into: dict[Key, list[Decimal]],
               params: Mapping[str, Any] | None = None) -> int:
    """Add the rows of ``query`` (keys then values) into ``into``; returns how many rows it read."""
    width = len(source.keys)
    count = 0
    for row in conn.execute(query, dict(params or {})):
        _add(into, tuple(row[:width]), row[width:])
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
    _read_sums(conn, source, statement, into=sums, params=_params(kf, as_of=as_of))
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
    _read_sums(conn, source, statement, into=sums, params=params)
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


# ---------------------------------------------------------------------------------------------- building


@dataclass(frozen=True)
class BuildResult:
    source: str
    through_id: int
    days: list[date]  # checkpoints written by this build
    corrections: int  # correction rows written (back-dated rows found)
    skipped: str | None = None  # why nothing was built (another build held the lock, writers did not finish)


def refresh(engine: Engine, sources: Sequence[Source], *, today: date | None = None,
            wait_seconds: float = 30.0) -> list[BuildResult]:  # float-ok: seconds
    """Bring the checkpoints of ``sources`` up to date: every complete day before ``today`` (UTC; default now)
    that has rows gets a checkpoint, and rows that arrived since the last build but are effective on or before
    a day already looked at become corrections. Safe to run at any time, from any number of processes, while
    events arrive; one transaction per source."""
    day = today or utcnow().date()
    if is_postgres(engine.engine):
        marks = _settled_watermarks(engine, sources, wait_seconds)
        if marks is None:
            return [BuildResult(s.name, 0, [], 0, "transactions open before the build did not end in time")
                    for s in sources]
    else:
        marks = {}
    results = []
    for source in sources:
        if is_postgres(engine.engine):
            _summarize(engine, source)
        with engine.begin() as conn:
            if is_postgres(conn):
                lock = zlib.crc32(f"mes-bridge checkpoints {source.name}".encode())
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock})
                mark = marks[source.name]
            else:  # BEGIN IMMEDIATE: no other writer until this transaction ends
                mark = conn.scalar(select(func.max(source.rows.c.id))) or 0
            results.append(_build(conn, source, mark, day))
    return results


def _summarize(engine: Engine, source: Source) -> None:
    for index in source.brin_indexes:
        try:
            with engine.begin() as conn:
                conn.execute(text("SELECT brin_summarize_new_values(CAST(:i AS regclass))"), {"i": index})
        except DBAPIError as exc:  # e.g. not the index's owner: the reports stay exact, they read more rows
            log.warning("checkpoints: cannot summarise %s: %s", index, str(exc.orig).splitlines()[0])


def _settled_watermarks(engine: Engine, sources: Sequence[Source], wait_seconds: float  # float-ok: seconds
                        ) -> dict[str, int] | None:
    """PostgreSQL: per source, the largest id handed out so far, once every transaction that could still hold a
    smaller one has ended; None when they did not end within ``wait_seconds``."""
    marks: dict[str, int] = {}
    with engine.connect() as conn:
        for source in sources:
            sequence = conn.scalar(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": source.rows.name})
            row = conn.execute(text(f"SELECT last_value, is_called FROM {sequence}")).one()
            marks[source.name] = int(row.last_value if row.is_called else row.last_value - 1)
        # Read after the sequences: a transaction that got an id before them is open now, or has ended.
        open_now = list(conn.scalars(text(
            "SELECT l.virtualxid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'virtualxid' AND l.granted AND l.pid <> pg_backend_pid() "
            "AND a.datname = current_database()")))
        conn.rollback()
        deadline = time.monotonic() + wait_seconds
        while open_now:
            if time.monotonic() > deadline:
                log.warning("checkpoints: %d transactions still open after %.0f s; not built this time",
                            len(open_now), wait_seconds)
                return None
            time.sleep(0.02)
            open_now = list(conn.scalars(text(
                "SELECT virtualxid FROM pg_locks WHERE locktype = 'virtualxid' AND granted "
                "AND virtualxid = ANY(:v)"), {"v": open_now}))
            conn.rollback()
    return marks


def _build(conn: Connection, source: Source, mark: int, today: date) -> BuildResult:
    state = conn.execute(select(checkpoint_state).where(checkpoint_state.c.source == source.name)).first()
    previous = 0 if state is None else int(state.through_id)
    covered: date | None = None if state is None else state.covered_day
    mark = max(mark, previous)  # another build may have proved more rows settled already
    last = today - timedelta(days=1)
    rows = source.rows.c
    now = utcnow()

    corrections = 0
    if covered is not None and mark > previous:
        late: dict[tuple[date, Key], list[Decimal]] = {}
        width = len(source.keys)
        query = source.sums([rows.id > previous, rows.id <= mark, rows.effective_at < _until(covered)], {}, True)
        for row in conn.execute(query):
            _add(late, (row[width].astimezone(UTC).date(), tuple(row[:width])), row[width + 1:])
        corrections = len(late)
        _write(conn, source.corrections, ["through_id", "day", *source.keys, *source.values],
               [(mark, d, *key, *values) for (d, key), values in sorted(late.items(), key=_sort_key)])

    if covered is None:
        first = conn.scalar(select(func.min(rows.effective_at)).where(rows.id <= mark))
        start = None if first is None else first.astimezone(UTC).date()
    else:
        start = covered + timedelta(days=1)
    built: list[date] = []
    if start is not None and start <= last:
        built = _build_days(conn, source, mark, start, last, now)
    # No rows at all yet: nothing covered (the first build with rows starts from the first one).
    new_covered = covered if start is None else last if covered is None else max(last, covered)
    values = {"through_id": mark, "covered_day": new_covered, "built_at": now}
    if state is None:
        conn.execute(insert(checkpoint_state).values(source=source.name, **values))
    else:
        conn.execute(update(checkpoint_state).where(checkpoint_state.c.source == source.name).values(**values))
    return BuildResult(source.name, mark, built, corrections)


def _build_days(conn: Connection, source: Source, mark: int, start: date, last: date, now: datetime) -> list[date]:
    """Checkpoints for the days in [start, last] that have rows, each from the one before (see the module)."""
    days, cp, corr, rows = checkpoint_days.c, source.checkpoints, source.corrections, source.rows.c
    prev = conn.execute(select(days.day, days.through_id).where(days.source == source.name)
                        .order_by(days.day.desc()).limit(1)).first()
    balance: dict[Key, list[Decimal]] = {}
    names = [*source.keys, *source.values]
    if prev is not None:
        _read_sums(conn, source, select(*(cp.c[n] for n in names)).where(cp.c.day == prev.day), balance)
    # Rows that arrived after that checkpoint (all, without one) for days before this build's first: all of them
    # are corrections (a build corrects every day it has looked at, and this one starts after them).
    after = -1 if prev is None else prev.through_id
    _read_sums(conn, source, select(*(corr.c[n] for n in names)).where(corr.c.through_id > after), balance)
    built = []
    day = start
    while day <= last:
        begin = datetime.combine(day, clock(0), UTC)
        found = _read_sums(conn, source, source.sums(
            [rows.effective_at >= begin, rows.effective_at < _until(day), rows.id <= mark], {}, False), balance)
        if found:
            kept = [(day, *key, *values) for key, values in sorted(balance.items(), key=_sort_key)
                    if any(values) or source.keep_zero(key)]
            _write(conn, cp, ["day", *names], kept)
            conn.execute(insert(checkpoint_days).values(source=source.name, day=day, until=_until(day),
                                                        through_id=mark, built_at=now))
            built.append(day)
        # Jump to the next day that has rows: opening balances dated 1970 must not cost one query per empty day.
        following = conn.scalar(select(func.min(rows.effective_at))
                                .where(rows.effective_at >= _until(day), rows.id <= mark))
        if following is None:
            break
        day = max(day + timedelta(days=1), following.astimezone(UTC).date())
    return built


def _sort_key(entry: tuple[Any, Any]) -> Any:
    return repr(entry[0])


def _write(conn: Connection, table: Table, columns: list[str], rows: Iterable[tuple[Any, ...]]) -> None:
    rows = list(rows)
    if not rows:
        return
    if is_postgres(conn) and conn.dialect.driver == "psycopg":
        text_rows = ("\t".join(copy_text(v) for v in row) + "\n" for row in rows)
        copy_into(conn, table, columns, "".join(text_rows))
    else:
        insert_rows(conn, table, columns, rows)
