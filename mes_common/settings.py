"""Configuration from ``MES_BRIDGE_*`` environment variables and an optional ``.env`` file.

Built at start-up by the shell (``Settings()``), never at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Every process's log lines (serve, collect, the benchmarks' children): local time first, as ``logging`` writes it.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MES_BRIDGE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path(".mes-bridge"), description="where the embedded database lives")
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; postgresql+psycopg://... selects PostgreSQL. Default: SQLite in data_dir",
    )
    currency: str = "EUR"
    log_level: str = "INFO"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite+pysqlite:///{(self.data_dir / 'mes-bridge.db').resolve()}"
