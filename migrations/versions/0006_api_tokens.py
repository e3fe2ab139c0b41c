"""API tokens (stored hashed) and the collectors' reported health

Revision ID: 0006_api_tokens
Revises: 0005

Written by hand to match ``api_tokens`` (``mes_bridge/tokens.py``) and ``collector_health``
(``mes_bridge/health_reports.py``) exactly (``tests/integration/test_schema.py`` checks it). Column types are
copied in (``UtcDateTime`` is stored as a timestamp with time zone), never imported: a migration is frozen history.
"""

import sqlalchemy as sa
from alembic import op


revision = "0006_api_tokens"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("work_centers", sa.Text(), nullable=False),
        sa.Column("machines", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_table(
        "collector_health",
        sa.Column("machine", sa.String(64), nullable=False),
        sa.Column("reported_by", sa.String(128), nullable=False),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("last_value_age_s", sa.Float(), nullable=True),
        sa.Column("spool_depth", sa.Integer(), nullable=False),
        sa.Column("events_per_s", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("machine", name="pk_collector_health"),
    )


def downgrade() -> None:
    op.drop_table("collector_health")
    op.drop_table("api_tokens")
