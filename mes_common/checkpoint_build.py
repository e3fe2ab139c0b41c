"""Building the balance checkpoints (``mes_common.checkpoints``): ``refresh``, safe beside the writers.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, func, insert, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from mes_common.checkpoints import (
    Key,
    Source,
    add_sums,
    checkpoint_days,
    checkpoint_state,
    day_until,
    read_sums,
)
from mes_common.db import copy_into, copy_text, insert_rows, is_postgres, utcnow

log = logging.getLogger(__name__)


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
        query = source.sums([rows.id > previous, rows.id <= mark, rows.effective_at < day_until(covered)], {}, True)
        for row in conn.execute(query):
            add_sums(late, (row[width].astimezone(UTC).date(), tuple(row[:width])), row[width + 1:])
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
        read_sums(conn, source, select(*(cp.c[n] for n in names)).where(cp.c.day == prev.day), balance)
    # Rows that arrived after that checkpoint (all, without one) for days before this build's first: all of them
    # are corrections (a build corrects every day it has looked at, and this one starts after them).
    after = -1 if prev is None else prev.through_id
    read_sums(conn, source, select(*(corr.c[n] for n in names)).where(corr.c.through_id > after), balance)
    built = []
    day = start
    while day <= last:
        begin = datetime.combine(day, clock(0), UTC)
        found = read_sums(conn, source, source.sums(
            [rows.effective_at >= begin, rows.effective_at < day_until(day), rows.id <= mark], {}, False), balance)
        if found:
            kept = [(day, *key, *values) for key, values in sorted(balance.items(), key=_sort_key)
                    if any(values) or source.keep_zero(key)]
            _write(conn, cp, ["day", *names], kept)
            conn.execute(insert(checkpoint_days).values(source=source.name, day=day, until=day_until(day),
                                                        through_id=mark, built_at=now))
            built.append(day)
        # Jump to the next day that has rows: opening balances dated 1970 must not cost one query per empty day.
        following = conn.scalar(select(func.min(rows.effective_at))
                                .where(rows.effective_at >= day_until(day), rows.id <= mark))
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
