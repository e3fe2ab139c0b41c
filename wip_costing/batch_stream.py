"""``StreamingWriter``: the ``BatchWriter`` that writes a batch's rows to PostgreSQL while the batch is computed
(stock moves, journal lines, event records; then balances, states and problems at ``finish``).

``apply_events_in`` hands the writer each applied event; every ``CHUNK`` events the writer passes what it has to
a thread, which COPYs the chunk's journal lines (and every second time the stock moves and event records so far)
while the caller computes the next chunk (psycopg waits on the socket without holding the interpreter lock, so
the server loads one chunk on the other core while Python computes the next). Nothing process-wide is changed:
a worker that wants the thread woken sooner sets the interpreter's switch interval itself, explicitly (see
``mes_bridge.forwarder.InProcessForwarder``).

Invariants:
- From ``__enter__`` to ``finish`` (or ``__exit__``) the writer thread owns the connection: the caller must not
  use it.
- Rows of a table go out in the order they were added. Move ids are reserved beforehand
  (``ledger.repository.NEXT_MOVE_IDS``), so journal lines name their moves before the moves are loaded.
- Moves handed over are final: the caller hands over only between events (a refused event has already rolled
  its moves back).
- The first error stops the writer; it is raised in the caller at the next hand-over or at ``__exit__``, and the
  transaction must be rolled back (the caller's transaction block fails with it). Leaving with an exception
  waits for the writer to stop first.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy.engine import Connection

from ledger import repository as ledger_repo
from ledger.model import Balance, BalanceKey, PostedMove
from mes_common.db import copy_raw
from wip_costing import repository as repo
from wip_costing.batch_writer import BatchWriter
from wip_costing.journal import JournalEntry
from wip_costing.journal_writer import JOURNAL_COPY, JournalText
from wip_costing.model import OrderState

# Events per hand-over: at most CHUNK, and at least four hand-overs per batch down to MIN_CHUNK events; towards
# the end of the batch the chunks halve (down to TAIL_CHUNK events), as the last one is loaded after the batch is
# computed. Each chunk's journal lines are one COPY; the stock moves and the event records so far go with every
# MOVES_AND_EVENTS_EVERY-th chunk and with the last, two COPYs (a COPY statement has a fixed cost; the journal
# lines name their moves by reserved ids, without a foreign key, so the moves may follow them): ~6 % more
# events/s at batch 1,000 than three COPYs per chunk.
CHUNK = 100
MIN_CHUNK = 20
TAIL_CHUNK = 10
MOVES_AND_EVENTS_EVERY = 2


class StreamingWriter(BatchWriter):
    """One batch's rows on their way to the server (see the module's invariants). ``move_ids``: ids reserved for
    the batch's moves (``ledger.repository.NEXT_MOVE_IDS``); ``events``: at most how many events it applies."""

    def __init__(self, conn: Connection, move_ids: Sequence[int], recorded_at: datetime, events: int) -> None:
        super().__init__(conn, recorded_at)
        raw = conn.connection.driver_connection
        assert raw is not None
        self._raw: Any = raw
        self._move_ids = move_ids
        self._journal = JournalText(move_ids, recorded_at)
        self._events: list[tuple[Any, ...]] = []  # records not handed over yet
        self._pending = 0  # events since the last hand-over
        self._hand_overs = 0
        self._moves_sent = 0
        self._chunk = max(MIN_CHUNK, min(CHUNK, -(-events // 4)))  # ``events``: how many the batch may apply
        self._left = events  # at most this many events still to come
        self._queue: queue.SimpleQueue[tuple[str, str, str] | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._abandoned = False
        self._stopped = False
        self._thread = threading.Thread(target=self._write, name="mes-bridge batch writer", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def add_event(self, record: tuple[Any, ...], entries: Sequence[JournalEntry],
                  moves: Sequence[PostedMove]) -> None:
        """One applied event: its record (``repository.EVENT_COLUMNS``), its journal entries and the batch's moves
        so far (``moves``: the stock's list, of which the writer sends what it has not sent yet)."""
        self._journal.add_event(record[0], entries)
        self._events.append(record)
        self._left -= 1
        self._pending += 1
        pending = self._pending
        if pending >= self._chunk or (pending >= TAIL_CHUNK and pending >= self._left):
            self._hand_over(moves, last=False)

    def _hand_over(self, moves: Sequence[PostedMove], *, last: bool) -> None:
        if self._error is not None:
            raise self._error
        self._hand_overs += 1
        moves_text = events_text = ""
        if last or self._hand_overs % MOVES_AND_EVENTS_EVERY == 0:
            events_text = repo.events_copy_text(self._events)
            self._events = []
            new = moves[self._moves_sent:]
            moves_text = ledger_repo.moves_copy_text(new, self._move_ids[self._moves_sent:self._moves_sent + len(new)])
            self._moves_sent += len(new)
        self._queue.put((moves_text, "".join(self._journal.lines), events_text))
        self._journal.lines = []
        self._pending = 0

    def finish(self, moves: Sequence[PostedMove], balances: Mapping[BalanceKey, Balance],
               states: Sequence[OrderState], loaded: Mapping[str, repo.Header],
               problems: list[dict[str, Any]]) -> None:
        """Hand over the rest and wait until everything is loaded (raises the thread's error, if any); then the
        balances, states and problems, on the caller's thread."""
        self._hand_over(moves, last=True)
        self._stop()
        if self._error is not None:
            raise self._error
        ledger_repo.write_balances(self.conn, balances)
        self._write_rest(states, loaded, problems)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None:
            self._abandoned = True  # the transaction is lost: load nothing more
        self._stop()

    def _stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._queue.put(None)
        self._thread.join()

    def _write(self) -> None:
        raw = self._raw
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            if self._error is not None or self._abandoned:
                continue  # drain: nothing more goes to the server once one load failed
            moves_text, journal_text, events_text = chunk
            try:
                if moves_text:
                    ledger_repo.copy_moves(raw, moves_text)
                for statement, text in ((JOURNAL_COPY, journal_text), (repo.EVENTS_COPY, events_text)):
                    if text:
                        copy_raw(raw, statement, text)
            except BaseException as exc:  # handed to the caller, which raises it
                self._error = exc
