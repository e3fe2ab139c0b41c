"""The API's one door to the service layer: every call a route makes goes through ``ApiServices``.

Routes never touch repositories or SQL; they call these methods, which run the project's command handlers and
report queries (each write in its own transaction, retried when it lost a race).
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from mes_common.db import make_engine
from mes_common.settings import Settings


class ApiServices:
    """Built once at start-up; owns the engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiServices:
        return cls(make_engine(settings.resolved_database_url()))

    def close(self) -> None:
        self.engine.dispose()
