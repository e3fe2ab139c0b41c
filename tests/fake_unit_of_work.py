"""``FakeUnitOfWork``: a unit of work in memory, for handler tests without a database server or a file.

Its data lives in one in-memory SQLite database (the repositories' SQL runs unchanged); the fake keeps what a
test wants to check about the unit of work itself: how many commits and rollbacks happened, and it can lose the
first ``lose_races`` commits to a simulated concurrent transaction (a serialization failure), so the retry of
``unit_of_work.run`` is exercised without two real transactions.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.engine import Connection, Engine, RootTransaction
from sqlalchemy.pool import StaticPool

from mes_bridge import schema
from mes_common.db import make_engine
from wip_costing.unit_of_work import Caches, UnitOfWork


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


class FakeUnitOfWork(UnitOfWork):
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db
        self.caches = db.caches
        self.postgres = False
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None

    def __enter__(self) -> Self:
        self._conn = self.db.engine.connect()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.rollback()
        assert self._conn is not None
        self._conn.close()
        self._conn = None

    @property
    def conn(self) -> Connection:
        assert self._conn is not None, "used outside its with block"
        if self._tx is None or not self._tx.is_active:
            self._tx = self._conn.begin()
        return self._conn

    def commit(self) -> None:
        if self.db.lose_races > 0:
            self.db.lose_races -= 1
            raise LostRace("could not serialize access due to concurrent update (simulated)")
        if self._tx is not None and self._tx.is_active:
            self._tx.commit()
        self._tx = None
        self.db.commits += 1

    def rollback(self) -> None:
        if self._tx is not None and self._tx.is_active:
            self._tx.rollback()
            self.db.rollbacks += 1
        self._tx = None
