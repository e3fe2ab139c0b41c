"""The unit of work: one database transaction, the connection repositories work in, the retry of a transaction
that lost a race, the choice of dialect, and the per-process caches (cosmicpython's pattern).

Invariants:
- A unit of work is one transaction: ``commit()`` makes it durable; leaving the ``with`` block without a commit
  (an exception, or a handler that decided not to) rolls it back. After a commit the unit of work may go on:
  the next use of ``conn`` opens a new transaction.
- ``run(new_uow, work)`` runs ``work(uow)`` in a fresh unit of work, again (up to ``MAX_ATTEMPTS`` times) when
  it lost a race to another transaction (unique key, serialization failure, deadlock, a stock move's
  idempotency key taken meanwhile); any other error is raised at once. ``work`` must therefore have no effect
  outside its unit of work.
- The caches (``Caches``) belong to the process, one set per database, and are handed to every unit of work on
  that database; each says how it is invalidated. Nothing in them is ever written from an uncommitted
  transaction's data without a key that a rolled-back change cannot reuse (release tokens are random, snapshots
  are keyed by release time).
"""

from __future__ import annotations

import abc
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self, TypeVar

from sqlalchemy.engine import Connection, Engine, RootTransaction
from sqlalchemy.exc import DBAPIError

from bom.repository import BomCache
from ledger.model import MoveConflict
from routing.repository import RoutingCache
from wip_costing.repository import SnapshotCache

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_ATTEMPTS = 8
# unique violation, serialization failure, deadlock detected
RETRY_SQLSTATES = frozenset({"23505", "40001", "40P01"})


class Caches:
    """The per-process caches of one database: released BOM structures, released routings, parsed order
    snapshots (see each class for its invalidation rule)."""

    def __init__(self) -> None:
        self.bom = BomCache()
        self.routings = RoutingCache()
        self.snapshots = SnapshotCache()

    def clear(self) -> None:
        """Forget everything (e.g. after the database was replaced under a running process)."""
        self.bom.clear()
        self.routings.clear()
        self.snapshots.clear()


class UnitOfWork(abc.ABC):
    """One transaction: ``with uow: ... uow.commit()``. Repositories work in ``uow.conn``."""

    caches: Caches
    postgres: bool

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.rollback()  # nothing left to roll back after a commit

    @property
    @abc.abstractmethod
    def conn(self) -> Connection:
        """The connection of the open transaction (for repositories only)."""

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def rollback(self) -> None: ...


class SqlUnitOfWork(UnitOfWork):
    """A unit of work on an SQLAlchemy engine (PostgreSQL with psycopg 3, or SQLite)."""

    def __init__(self, engine: Engine, caches: Caches | None = None) -> None:
        self.engine = engine
        self.caches = caches if caches is not None else Caches()
        self.postgres = engine.dialect.name == "postgresql"
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None

    def __enter__(self) -> Self:
        self._conn = self.engine.connect()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.rollback()
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open: use it in a with block")
        if self._tx is None or not self._tx.is_active:
            self._tx = self._conn.begin()
        return self._conn

    def commit(self) -> None:
        if self._tx is not None and self._tx.is_active:
            self._tx.commit()
        self._tx = None

    def rollback(self) -> None:
        if self._tx is not None and self._tx.is_active:
            self._tx.rollback()
        self._tx = None


def retryable(exc: BaseException) -> bool:
    """Lost a race to another transaction (PostgreSQL; SQLite writers are serialised by BEGIN IMMEDIATE), or a
    stock move's idempotency key was taken by a transaction that committed meanwhile."""
    if isinstance(exc, MoveConflict):
        return True
    # COPY runs on the raw psycopg connection, so its errors arrive unwrapped (with .sqlstate).
    origin = exc.orig if isinstance(exc, DBAPIError) else exc
    return getattr(origin, "sqlstate", None) in RETRY_SQLSTATES


def run(new_uow: Callable[[], UnitOfWork], work: Callable[[UnitOfWork], T]) -> T:
    """``work(uow)`` in a fresh unit of work (``work`` commits), again when it lost a race."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with new_uow() as uow:
                return work(uow)
        except Exception as exc:
            if attempt == MAX_ATTEMPTS or not retryable(exc):
                raise
            log.info("transaction lost a race (%s), retrying (attempt %d)", type(exc).__name__, attempt)
            time.sleep(0.005 * attempt)
    raise AssertionError("unreachable")
