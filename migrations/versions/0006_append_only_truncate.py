"""append-only tables refuse TRUNCATE as well as UPDATE and DELETE

Revision ID: 0006_append_only_truncate
Revises: 0005

On PostgreSQL a TRUNCATE skips row and statement triggers for DELETE, so the stock moves, the cost journal and the
machine scans could be emptied wholesale. Each gets a BEFORE TRUNCATE trigger calling its existing append-only
function (same message, naming TRUNCATE). SQLite has no TRUNCATE statement (its DELETE trigger already refuses a
``DELETE FROM`` without WHERE): nothing to do there.
"""

from migrations.append_only import allow_truncate, refuse_truncate

revision = "0006_append_only_truncate"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("stock_moves", "journal_lines", "machine_scans")


def upgrade() -> None:
    for table in TABLES:
        refuse_truncate(table)


def downgrade() -> None:
    for table in TABLES:
        allow_truncate(table)
