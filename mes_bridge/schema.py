"""The database schema: every package's tables, and Alembic upgrades on SQLite or PostgreSQL."""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Engine

from mes_common.db import metadata

# Modules that define tables on ``mes_common.db.metadata``.
TABLE_MODULES = ("ledger.tables", "routing.tables", "bom.tables", "wip_costing.tables", "mes_bridge.tokens",
                 "mes_bridge.health_reports", "mes_common.checkpoints", "ledger.checkpoints", "wip_costing.checkpoints")


def target_metadata() -> MetaData:
    for name in TABLE_MODULES:
        importlib.import_module(name)
    return metadata


def alembic_config() -> Config:
    here = Path(__file__).resolve().parent.parent / "migrations"
    import migrations

    location = Path(migrations.__file__).resolve().parent if migrations.__file__ else here
    cfg = Config(str(location / "alembic.ini"))
    cfg.set_main_option("script_location", str(location))
    cfg.set_main_option("version_locations", str(location / "versions"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or upgrade the schema of ``engine``'s database to ``revision``."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
