"""``mes-bridge db ...``: schema management."""

from __future__ import annotations

import typer

from mes_bridge import schema
from mes_bridge.cli.common import engine_from_settings

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="target revision")) -> None:
    """Create or upgrade the schema of MES_BRIDGE_DATABASE_URL (default: embedded SQLite)."""
    with engine_from_settings() as engine:
        schema.upgrade(engine, revision)
        print(f"schema at {schema.current_revision(engine)} ({engine.url.render_as_string(hide_password=True)})")
