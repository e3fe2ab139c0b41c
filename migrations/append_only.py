"""Append-only tables for hand-written migrations: triggers that refuse UPDATE and DELETE.

Used by the migrations that create such tables; what it emits must never change once a migration uses it
(a database upgraded earlier has exactly these triggers).
"""

from alembic import op


def create_triggers(table: str, instead: str) -> None:
    """Refuse UPDATE and DELETE on ``table`` (PostgreSQL and SQLite); the error says what to do ``instead``."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(f"""
    CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{table} is append-only: % refused ({instead})', TG_OP
            USING ERRCODE = 'restrict_violation';
    END
    $$
    """)
        op.execute(f"""
    CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()
    """)
    elif dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"""
    CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table}
    BEGIN SELECT RAISE(ABORT, '{table} is append-only - {verb} refused ({instead})'); END
    """)


def drop_triggers(table: str) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {table}_append_only()")
    elif dialect == "sqlite":
        for name in (f"{table}_no_update", f"{table}_no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")


def refuse_truncate(table: str) -> None:
    """Refuse TRUNCATE on ``table`` too (PostgreSQL; SQLite has no TRUNCATE: its DELETE trigger covers it), with
    the message of its existing ``{table}_append_only()`` function (which names the operation refused)."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"""
    CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()
    """)


def allow_truncate(table: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
