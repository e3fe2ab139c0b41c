"""journal lines carry their cost-element split in columns

Revision ID: 0005
Revises: 0004

Written by hand to match ``journal_lines`` in ``wip_costing/tables.py`` (``tests/integration/test_schema.py``
checks it). A WIP, SCRAP-LOSS or variance line used to hold one cost element (``element``); it now holds its
amount split into the columns ``material``, ``setup``, ``labor``, ``machine`` and ``energy`` (NULL: none of it), so
a posting side needs one line per provenance instead of one per element. The (account, effective_at) index is
replaced by a block-range (BRIN) index on effective_at on PostgreSQL (a plain one on SQLite): the sums read most
lines anyway, the export reads a time range, and a BRIN index costs next to nothing per inserted line.

Upgrade: every existing line keeps its id, amounts and everything else; its one element becomes that element's
column. Downgrade: a line holding one element gets it back in ``element``; a line holding several is replaced by
one line per element (same entry, amounts per element, new ids). The append-only triggers are lifted only while
this migration rewrites the table.
"""

import sqlalchemy as sa
from alembic import op

from migrations.column_types import money
from migrations.append_only import create_triggers, drop_triggers

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ELEMENTS = ("material", "setup", "labor", "machine", "energy")
TABLE = "journal_lines"
INSTEAD = "post a correcting entry instead"
# The columns a line has besides its id, its amounts and its element (for the downgrade's split lines).
OTHER_COLUMNS = ("entry", "kind", "event_id", "account", "work_order", "operation", "work_center", "provenance",
                 "item", "stock_move_id", "effective_at", "recorded_at")


def upgrade() -> None:
    drop_triggers(TABLE)
    with op.batch_alter_table(TABLE) as batch:
        for name in ELEMENTS:
            batch.add_column(sa.Column(name, money(), nullable=True))
    for name in ELEMENTS:
        op.execute(f"UPDATE {TABLE} SET {name} = debit + credit WHERE element = '{name}'")
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("element")
    op.drop_index("ix_journal_lines_account_effective_at", table_name=TABLE)
    op.create_index("ix_journal_lines_effective_at", TABLE, ["effective_at"], postgresql_using="brin")
    create_triggers(TABLE, INSTEAD)


def downgrade() -> None:
    drop_triggers(TABLE)
    op.drop_index("ix_journal_lines_effective_at", table_name=TABLE)
    op.create_index("ix_journal_lines_account_effective_at", TABLE, ["account", "effective_at"])
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("element", sa.String(16), nullable=True))
    held = " + ".join(f"CASE WHEN {name} IS NULL THEN 0 ELSE 1 END" for name in ELEMENTS)
    others = ", ".join(OTHER_COLUMNS)
    for name in ELEMENTS:
        op.execute(
            f"INSERT INTO {TABLE} ({others}, element, debit, credit) "
            f"SELECT {others}, '{name}', CASE WHEN debit > 0 THEN {name} ELSE 0 END, "
            f"CASE WHEN debit > 0 THEN 0 ELSE {name} END FROM {TABLE} WHERE ({held}) > 1 AND {name} IS NOT NULL"
        )
    op.execute(f"DELETE FROM {TABLE} WHERE ({held}) > 1")
    for name in ELEMENTS:
        op.execute(f"UPDATE {TABLE} SET element = '{name}' WHERE {name} IS NOT NULL")
    with op.batch_alter_table(TABLE) as batch:
        for name in ELEMENTS:
            batch.drop_column(name)
    create_triggers(TABLE, INSTEAD)
