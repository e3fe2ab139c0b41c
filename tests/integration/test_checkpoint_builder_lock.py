"""The checkpoint builder's lock on PostgreSQL: the process holding it is named in ``pg_stat_activity`` from the
moment it holds it, and a process that asked and did not get it leaves no builder's name on its pooled
connection."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from mes_bridge.checkpoint_worker import BUILDER_LOCK, BUILDER_NAME, CheckpointBuilder
from mes_common.db import make_engine

pytestmark = pytest.mark.postgres

HOLDERS = text(
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = :k AND a.datname = current_database()")


def test_one_named_holder_and_no_name_left_on_the_others_connections(pg_engine: Engine, pg_url: str) -> None:
    other_engine = make_engine(pg_url)
    first, second = CheckpointBuilder(pg_engine), CheckpointBuilder(other_engine)
    try:
        assert first.is_builder()
        assert not second.is_builder()
        with pg_engine.connect() as conn:
            holders = list(conn.scalars(HOLDERS, {"k": BUILDER_LOCK}))
        assert len(holders) == 1 and holders[0].startswith(BUILDER_NAME)
        with other_engine.connect() as conn:  # the pooled connection that asked
            assert not conn.scalar(text("SHOW application_name")).startswith(BUILDER_NAME)
        first.close()
        assert second.is_builder()  # takes over
        assert first.is_builder() is False
    finally:
        first.close()
        second.close()
        other_engine.dispose()
