"""``FakeUnitOfWork``: a unit of work in memory, for handler tests without a database server or a file.

Its data lives in one in-memory SQLite database (the repositories' SQL runs unchanged); the fake keeps what a
test wants to check about the unit of work itself: how many commits and rollbacks happened, and it can lose the
first ``lose_races`` commits to a simulated concurrent transaction (a serialization failure), so the retry of
``unit_of_work.run`` is exercised without two real transactions.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool

from mes_bridge import schema
from mes_common.db import make_engine
from wip_costing.unit_of_work import Caches, SqlUnitOfWork


class LostRace(Exception):
    """What psycopg raises for a serialization failure (the retry looks at ``sqlstate``)."""

    sqlstate = "40001"


class FakeDatabase:
    """One in-memory database with the schema at head, shared by the fakes built from it."""

    def __init__(self) -> None:
        self.engine: Engine = make_engine("sqlite://", poolclass=StaticPool)
        schema.upgrade(self.engine)
        self.caches = Caches()
        self.commits = 0
        self.rollbacks = 0
        self.lose_races = 0

    def uow(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)


class FakeUnitOfWork(SqlUnitOfWork):
    """``SqlUnitOfWork`` on the fake's in-memory database, counting commits and rollbacks, losing races on demand."""

    def __init__(self, db: FakeDatabase) -> None:
        super().__init__(db.engine, db.caches)
        self.db = db

    def commit(self) -> None:
        if self.db.lose_races > 0:
            self.db.lose_races -= 1
            raise LostRace("could not serialize access due to concurrent update (simulated)")
        super().commit()
        self.db.commits += 1

    def rollback(self) -> None:
        if self._tx is not None and self._tx.is_active:
            self.db.rollbacks += 1
        super().rollback()
