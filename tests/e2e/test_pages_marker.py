"""The dashboard stream's change marker (``wip_costing.reports.change_marker``) on a real database: it moves when
a row is committed, including a row whose id is below the highest one already visible (PostgreSQL hands out ids
before commit, so a slower transaction can commit after a faster one with a higher id)."""

from __future__ import annotations

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import Connection, Engine

from mes_common.db import utcnow
from wip_costing.reports import change_marker
from wip_costing.tables import event_problems


def _problem(conn: Connection, event_id: str) -> None:
    conn.execute(insert(event_problems).values(event_id=event_id, status="rejected", reason="test", payload="{}",
                                               recorded_at=utcnow()))


def _marker(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return change_marker(conn)


def test_the_marker_moves_with_each_committed_row(engine: Engine) -> None:
    empty = _marker(engine)
    assert empty == (0, 0, 0, 0)
    with engine.begin() as conn:
        _problem(conn, "e-1")
    one = _marker(engine)
    assert one[2:] == (1, 1) and one != empty
    assert _marker(engine) == one  # nothing committed, nothing moves


@pytest.mark.postgres
def test_a_row_committed_below_the_highest_id_moves_the_marker(pg_engine: Engine) -> None:
    with pg_engine.connect() as slow, pg_engine.connect() as fast:
        slow.begin()
        _problem(slow, "slow")  # takes the lower id, commits last
        with fast.begin():
            _problem(fast, "fast")
        before = _marker(pg_engine)
        slow.commit()
    after = _marker(pg_engine)
    assert before[2] == after[2]  # the highest id did not change ...
    assert after != before  # ... but the marker did
