"""Where a batch's rows go: one interface (``BatchWriter``) for ``apply_events_in``, two implementations.

- ``PlainWriter`` (SQLite, and PostgreSQL batches under ``STREAM_FROM`` events): keeps the rows and writes them at
  ``finish`` with a handful of set-based statements (the repositories choose executemany on SQLite, COPY on
  PostgreSQL).
- ``wip_costing.batch_stream.StreamingWriter`` (PostgreSQL, batches of ``STREAM_FROM`` events or more): hands the
  rows to a writer thread that COPYs them while the rest of the batch is computed.

Both write the same rows (``tests/integration/wip_costing/test_streamed_batches.py`` compares them):
- per applied event (``add_event``): its record (``repository.EVENT_COLUMNS`` order), its journal entries (keyed
  ``<event id>#1``, ``#2``, ...) and the batch's stock moves so far (the writer takes the ones it has not seen);
- once (``finish``): the rest of those, then the locked balances, the orders' states (headers only where they
  differ from what was loaded) and the stored problems (rejections, conflicts).

Invariants: a writer is used inside the batch's transaction and only between events (a refused event has rolled
its moves back already); after an error the transaction must be rolled back (the unit of work does).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy.engine import Connection

from ledger import repository as ledger_repo
from ledger.model import Balance, BalanceKey, PostedMove
from wip_costing import journal_writer
from wip_costing import repository as repo
from wip_costing.journal import JournalEntry
from wip_costing.model import OrderState

# From this many events a PostgreSQL batch is written by the streaming writer while it is computed (below, the
# round trip reserving move ids and the writer's COPY statements cost more than the overlap gains).
STREAM_FROM = 20


class BatchWriter(abc.ABC):
    """A batch's rows on their way to the database (see the module's docstring)."""

    def __init__(self, conn: Connection, recorded_at: datetime) -> None:
        self.conn = conn
        self.recorded_at = recorded_at

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    @abc.abstractmethod
    def add_event(self, record: tuple[Any, ...], entries: Sequence[JournalEntry],
                  moves: Sequence[PostedMove]) -> None:
        """One applied event: its record, its journal entries, and the batch's moves so far."""

    @abc.abstractmethod
    def finish(self, moves: Sequence[PostedMove], balances: Mapping[BalanceKey, Balance],
               states: Sequence[OrderState], loaded: Mapping[str, repo.Header],
               problems: list[dict[str, Any]]) -> None:
        """Everything not written yet, then balances, states and problems."""

    def _write_rest(self, states: Sequence[OrderState], loaded: Mapping[str, repo.Header],
                    problems: list[dict[str, Any]]) -> None:
        repo.save_states(self.conn, states, loaded)
        repo.insert_problems(self.conn, problems)


class PlainWriter(BatchWriter):
    """Keeps the batch's rows and writes them at ``finish``."""

    def __init__(self, conn: Connection, recorded_at: datetime) -> None:
        super().__init__(conn, recorded_at)
        self._records: list[tuple[Any, ...]] = []
        self._entries: list[tuple[str, JournalEntry]] = []

    def add_event(self, record: tuple[Any, ...], entries: Sequence[JournalEntry],
                  moves: Sequence[PostedMove]) -> None:
        event_id = record[0]
        self._entries.extend((f"{event_id}#{n}", entry) for n, entry in enumerate(entries, 1))
        self._records.append(record)

    def finish(self, moves: Sequence[PostedMove], balances: Mapping[BalanceKey, Balance],
               states: Sequence[OrderState], loaded: Mapping[str, repo.Header],
               problems: list[dict[str, Any]]) -> None:
        repo.insert_events(self.conn, self._records)
        ids = ledger_repo.write_moves(self.conn, moves, balances) if moves else []
        journal_writer.insert_journal(self.conn, self._entries, ids, self.recorded_at)
        self._write_rest(states, loaded, problems)
