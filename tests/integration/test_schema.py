"""The Alembic migrations build exactly the tables the code defines, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Engine

from mes_bridge import schema


def test_migrated_schema_matches_table_definitions(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, schema.target_metadata())
    assert diff == [], f"migrations and table definitions differ: {diff}"


def test_upgrade_is_repeatable(engine: Engine) -> None:
    schema.upgrade(engine)
    schema.upgrade(engine)
    assert schema.current_revision(engine) is not None


@pytest.mark.postgres
def test_a_column_type_that_differs_is_found(pg_engine: Engine) -> None:
    """The comparison above looks at column types, not only at names: a money column of another scale is caught."""
    with pg_engine.begin() as conn:
        conn.execute(text("ALTER TABLE stock_balances ALTER COLUMN value TYPE numeric(24, 4)"))
    with pg_engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, schema.target_metadata())
    changes = [change for group in diff for change in group]  # column changes come grouped per table
    assert [(c[0], c[2], c[3]) for c in changes] == [("modify_type", "stock_balances", "value")], diff
