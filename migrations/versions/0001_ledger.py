"""stock ledger: items, locations, lots, moves, balances

Revision ID: 0001
Revises: None

Written by hand to match ``ledger/tables.py`` exactly (``tests/integration/test_schema.py`` checks it), plus what
table definitions cannot say: triggers that make ``stock_moves`` append-only and number ``locations.seq``.
"""

import sqlalchemy as sa
from alembic import op

from migrations.column_types import money, qty, utc_datetime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

CODE = 64


def _move_id() -> sa.types.TypeEngine:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _audit() -> list[sa.Column]:
    return [
        sa.Column("created_at", utc_datetime(), nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.Column("created_by", sa.String(CODE), nullable=False, server_default="system"),
        sa.Column("source", sa.String(200), nullable=False, server_default=""),
    ]


PG_TRIGGERS = [
    """
    CREATE FUNCTION stock_moves_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'stock_moves is append-only: % refused (post a reversing move instead)', TG_OP
            USING ERRCODE = 'restrict_violation';
    END
    $$
    """,
    """
    CREATE TRIGGER stock_moves_append_only BEFORE UPDATE OR DELETE ON stock_moves
    FOR EACH STATEMENT EXECUTE FUNCTION stock_moves_append_only()
    """,
    "CREATE SEQUENCE locations_seq_seq OWNED BY locations.seq",
    """
    CREATE FUNCTION locations_fill_seq() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.seq IS NULL THEN
            NEW.seq := nextval('locations_seq_seq');
        END IF;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER locations_fill_seq BEFORE INSERT ON locations
    FOR EACH ROW EXECUTE FUNCTION locations_fill_seq()
    """,
]

SQLITE_TRIGGERS = [
    """
    CREATE TRIGGER stock_moves_no_update BEFORE UPDATE ON stock_moves
    BEGIN SELECT RAISE(ABORT, 'stock_moves is append-only - UPDATE refused (post a reversing move instead)'); END
    """,
    """
    CREATE TRIGGER stock_moves_no_delete BEFORE DELETE ON stock_moves
    BEGIN SELECT RAISE(ABORT, 'stock_moves is append-only - DELETE refused (post a reversing move instead)'); END
    """,
    """
    CREATE TRIGGER locations_fill_seq AFTER INSERT ON locations WHEN NEW.seq IS NULL
    BEGIN UPDATE locations SET seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM locations) WHERE code = NEW.code; END
    """,
]


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("code", sa.String(CODE), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("uom", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        *_audit(),
        sa.PrimaryKeyConstraint("code", name="pk_items"),
    )
    op.create_table(
        "locations",
        sa.Column("code", sa.String(CODE), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=True),
        *_audit(),
        sa.PrimaryKeyConstraint("code", name="pk_locations"),
        sa.UniqueConstraint("seq", name="uq_locations_seq"),
    )
    op.create_table(
        "stock_moves",
        sa.Column("id", _move_id(), nullable=False, autoincrement=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("item", sa.String(CODE), nullable=False),
        sa.Column("qty", qty(), nullable=False),
        sa.Column("from_location", sa.String(CODE), nullable=True),
        sa.Column("to_location", sa.String(CODE), nullable=True),
        sa.Column("lot", sa.String(CODE), nullable=False),
        sa.Column("value", money(), nullable=False),
        sa.Column("requested_value", money(), nullable=True),
        sa.Column("actor", sa.String(CODE), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("provenance", sa.String(16), nullable=False),
        sa.Column("effective_at", utc_datetime(), nullable=False),
        sa.Column("recorded_at", utc_datetime(), nullable=False),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("reverses", _move_id(), nullable=True),
        sa.Column("serials", sa.Text(), nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_stock_moves"),
        sa.UniqueConstraint("idempotency_key", name="uq_stock_moves_idempotency_key"),
        sa.UniqueConstraint("reverses", name="uq_stock_moves_reverses"),
        sa.ForeignKeyConstraint(["item"], ["items.code"], name="fk_stock_moves_item_items"),
        sa.ForeignKeyConstraint(["from_location"], ["locations.code"], name="fk_stock_moves_from_location_locations"),
        sa.ForeignKeyConstraint(["to_location"], ["locations.code"], name="fk_stock_moves_to_location_locations"),
        sa.ForeignKeyConstraint(["reverses"], ["stock_moves.id"], name="fk_stock_moves_reverses_stock_moves"),
        sa.CheckConstraint("qty > 0", name="ck_stock_moves_qty_positive"),
        sa.CheckConstraint("value >= 0", name="ck_stock_moves_value_not_negative"),
        sa.CheckConstraint("from_location IS NOT NULL OR to_location IS NOT NULL", name="ck_stock_moves_has_a_side"),
    )
    op.create_index("ix_stock_moves_item_effective_at", "stock_moves", ["item", "effective_at"])
    op.create_index("ix_stock_moves_reference", "stock_moves", ["reference"])
    op.create_table(
        "stock_balances",
        sa.Column("item", sa.String(CODE), nullable=False),
        sa.Column("location", sa.String(CODE), nullable=False),
        sa.Column("lot", sa.String(CODE), nullable=False),
        sa.Column("qty", qty(), nullable=False),
        sa.Column("value", money(), nullable=False),
        sa.PrimaryKeyConstraint("item", "location", "lot", name="pk_stock_balances"),
        sa.ForeignKeyConstraint(["item"], ["items.code"], name="fk_stock_balances_item_items"),
        sa.ForeignKeyConstraint(["location"], ["locations.code"], name="fk_stock_balances_location_locations"),
        sa.CheckConstraint("qty >= 0", name="ck_stock_balances_qty_not_negative"),
        sa.CheckConstraint("value >= 0", name="ck_stock_balances_value_not_negative"),
    )
    op.create_table(
        "stock_lots",
        sa.Column("item", sa.String(CODE), nullable=False),
        sa.Column("lot", sa.String(CODE), nullable=False),
        sa.Column("first_move_id", _move_id(), nullable=False),
        sa.Column("created_at", utc_datetime(), nullable=False),
        sa.PrimaryKeyConstraint("item", "lot", name="pk_stock_lots"),
        sa.ForeignKeyConstraint(["item"], ["items.code"], name="fk_stock_lots_item_items"),
    )
    op.create_table(
        "stock_serials",
        sa.Column("item", sa.String(CODE), nullable=False),
        sa.Column("serial", sa.String(CODE), nullable=False),
        sa.Column("lot", sa.String(CODE), nullable=False),
        sa.Column("location", sa.String(CODE), nullable=True),
        sa.Column("last_move_id", _move_id(), nullable=True),
        sa.PrimaryKeyConstraint("item", "serial", name="pk_stock_serials"),
        sa.ForeignKeyConstraint(["item"], ["items.code"], name="fk_stock_serials_item_items"),
        sa.ForeignKeyConstraint(["location"], ["locations.code"], name="fk_stock_serials_location_locations"),
        sa.ForeignKeyConstraint(["last_move_id"], ["stock_moves.id"], name="fk_stock_serials_last_move_id_stock_moves"),
    )
    op.create_table(
        "stock_move_serials",
        sa.Column("move_id", _move_id(), nullable=False),
        sa.Column("item", sa.String(CODE), nullable=False),
        sa.Column("serial", sa.String(CODE), nullable=False),
        sa.PrimaryKeyConstraint("move_id", "serial", name="pk_stock_move_serials"),
        sa.ForeignKeyConstraint(["move_id"], ["stock_moves.id"], name="fk_stock_move_serials_move_id_stock_moves"),
    )
    op.create_index("ix_stock_move_serials_item_serial", "stock_move_serials", ["item", "serial"])
    dialect = op.get_bind().dialect.name
    for statement in PG_TRIGGERS if dialect == "postgresql" else SQLITE_TRIGGERS if dialect == "sqlite" else []:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS locations_fill_seq ON locations")
        op.execute("DROP FUNCTION IF EXISTS locations_fill_seq()")
        op.execute("DROP TRIGGER IF EXISTS stock_moves_append_only ON stock_moves")
        op.execute("DROP FUNCTION IF EXISTS stock_moves_append_only()")
    elif dialect == "sqlite":
        for name in ("locations_fill_seq", "stock_moves_no_update", "stock_moves_no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index("ix_stock_move_serials_item_serial", table_name="stock_move_serials")
    op.drop_table("stock_move_serials")
    op.drop_table("stock_serials")
    op.drop_table("stock_lots")
    op.drop_table("stock_balances")
    op.drop_index("ix_stock_moves_reference", table_name="stock_moves")
    op.drop_index("ix_stock_moves_item_effective_at", table_name="stock_moves")
    op.drop_table("stock_moves")
    op.drop_table("locations")
    op.drop_table("items")
