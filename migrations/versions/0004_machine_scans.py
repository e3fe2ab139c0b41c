"""work orders scanned at machines

Revision ID: 0004
Revises: 0003

Written by hand to match ``machine_scans`` in ``wip_costing/tables.py`` exactly (``tests/integration/test_schema.py``
checks it), plus triggers that make it append-only (UPDATE and DELETE refused).
"""

import sqlalchemy as sa
from alembic import op

from mes_common.db import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CODE = 64

PG_TRIGGERS = [
    """
    CREATE FUNCTION machine_scans_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'machine_scans is append-only: % refused (scan again instead)', TG_OP
            USING ERRCODE = 'restrict_violation';
    END
    $$
    """,
    """
    CREATE TRIGGER machine_scans_append_only BEFORE UPDATE OR DELETE ON machine_scans
    FOR EACH STATEMENT EXECUTE FUNCTION machine_scans_append_only()
    """,
]

SQLITE_TRIGGERS = [
    """
    CREATE TRIGGER machine_scans_no_update BEFORE UPDATE ON machine_scans
    BEGIN SELECT RAISE(ABORT, 'machine_scans is append-only - UPDATE refused (scan again instead)'); END
    """,
    """
    CREATE TRIGGER machine_scans_no_delete BEFORE DELETE ON machine_scans
    BEGIN SELECT RAISE(ABORT, 'machine_scans is append-only - DELETE refused (scan again instead)'); END
    """,
]


def upgrade() -> None:
    op.create_table(
        "machine_scans",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("machine", sa.String(CODE), nullable=False),
        sa.Column("work_order", sa.String(CODE), nullable=False),
        sa.Column("operator", sa.String(CODE), nullable=True),
        sa.Column("terminal", sa.String(CODE), nullable=True),
        sa.Column("scanned_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_machine_scans"),
        sa.ForeignKeyConstraint(["work_order"], ["work_orders.id"], name="fk_machine_scans_work_order_work_orders"),
    )
    op.create_index("ix_machine_scans_machine_id", "machine_scans", ["machine", "id"])
    dialect = op.get_bind().dialect.name
    for statement in PG_TRIGGERS if dialect == "postgresql" else SQLITE_TRIGGERS if dialect == "sqlite" else []:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS machine_scans_append_only ON machine_scans")
        op.execute("DROP FUNCTION IF EXISTS machine_scans_append_only()")
    elif dialect == "sqlite":
        for name in ("machine_scans_no_update", "machine_scans_no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index("ix_machine_scans_machine_id", table_name="machine_scans")
    op.drop_table("machine_scans")
