"""Alembic environment: runs on the connection handed over by ``mes_bridge.schema`` (or the settings' URL)."""

from __future__ import annotations

from alembic import context

from mes_bridge.schema import target_metadata
from mes_common.db import make_engine
from mes_common.settings import Settings

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata(), render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url") or Settings().resolved_database_url()
    engine = make_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata(), render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline SQL generation is not supported; run `mes-bridge db upgrade`")
run_migrations_online()
