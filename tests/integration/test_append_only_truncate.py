"""On PostgreSQL the append-only tables refuse TRUNCATE too (directly, or cascaded from a table they refer to);
the error names the table and the operation."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("table", ["stock_moves", "journal_lines", "machine_scans"])
def test_truncate_is_refused(pg_engine: Engine, table: str) -> None:
    with pytest.raises(DBAPIError, match=f"{table} is append-only: TRUNCATE refused"), pg_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {table} CASCADE"))  # CASCADE: tables referring to it would refuse first


def test_a_cascaded_truncate_is_refused(pg_engine: Engine) -> None:
    with pytest.raises(DBAPIError, match="append-only: TRUNCATE refused"), pg_engine.begin() as conn:
        conn.execute(text("TRUNCATE items CASCADE"))
