"""The service layer's one object: ``Services``, built once at start-up from ``Settings``, used by the CLI, the
API, the collectors' in-process forwarder and the demo.

It owns the engine and the per-process caches (``wip_costing.unit_of_work.Caches``); ``handle(command)`` runs the
command's handler in a fresh unit of work, retried when it lost a race; ``read()`` lends a connection for report
queries (``wip_costing.reports``, ``ledger.queries``, ``scans.current_scans``) in a read-only transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self

from sqlalchemy.engine import Connection, Engine

from mes_common.db import READ_ONLY, make_engine
from mes_common.settings import Settings
from wip_costing.handlers import handle
from wip_costing.unit_of_work import Caches, SqlUnitOfWork, run


class Services:
    def __init__(self, engine: Engine, caches: Caches | None = None) -> None:
        self.engine = engine
        self.caches = caches if caches is not None else Caches()

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **engine_options: Any) -> Services:
        """An engine for the configured database (``MES_BRIDGE_DATABASE_URL``; default: embedded SQLite)."""
        settings = settings if settings is not None else Settings()
        return cls(make_engine(settings.resolved_database_url(), **engine_options))

    def uow(self) -> SqlUnitOfWork:
        """A new unit of work on this database, sharing the process's caches."""
        return SqlUnitOfWork(self.engine, self.caches)

    def handle(self, command: object) -> Any:
        """Run ``command`` (see ``wip_costing.commands``) and return its handler's result; a refused command
        raises its ``DomainError`` with nothing written."""
        return run(self.uow, lambda uow: handle(command, uow))

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection in a read-only transaction for report queries (on SQLite a deferred one, so readers do
        not queue behind writers)."""
        with self.engine.connect() as conn:
            conn.execution_options(**{READ_ONLY: True})
            with conn.begin():
                yield conn

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def bootstrap(settings: Settings | None = None) -> Services:
    """``Services`` for ``settings`` (default: from the environment), built at start-up, not at import."""
    return Services.from_settings(settings)
