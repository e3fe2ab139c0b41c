"""The collectors' durable local spool: events waiting to be forwarded, and each machine's counter state.

A plain SQLite file (stdlib ``sqlite3``), WAL journal with ``synchronous=FULL`` so every commit is on disk
(fsync) before it is reported done.

Group commit: readings are handed to ``submit`` (or the blocking ``commit``) and one writer thread stores
everything queued since its last commit in ONE transaction with ONE fsync (the events of all its readings in
one ``executemany``, the last state of each machine in another).
Readings of many machines arriving while a commit is on disk therefore share the next one: throughput grows
with the number of waiting readings instead of being capped at one fsync per reading (see
``benchmarks/spool.py``), and a lone reading is written at once (no waiting window).

Invariants:
- Events and the machine state that accounts for them are written in ONE transaction: after a crash
  (SIGKILL, power loss) either both are there or neither, so a restart neither loses nor repeats counts.
- A reading's future resolves (and ``commit`` returns) only after the transaction holding it is committed:
  the session's position moves only then, so nothing acknowledged can be lost.
- One reading that cannot be stored (an event that does not serialise) fails alone, before any SQL; the others
  of its group are stored. A failed statement or COMMIT fails every reading of the group, none is reported stored.
- The spool is bounded: a reading that would exceed ``capacity`` stores nothing and resolves False.
  ``alarm`` is raised at ``ALARM_RATIO`` of capacity.
- One collector per spool: a second one is refused (``SpoolBusy``) while the first holds the file lock.
- Events leave in spool order (``seq``), which is reading order per machine, and only by ``ack`` — after
  the central service answered with an outcome for them. An ack is not fsync'd on its own: one lost to a
  power cut sends its events again, which the service answers as duplicates.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from mes_bridge.collectors.core import MachineState
from mes_common.errors import DomainError
from wip_costing.events import OperationEvent, parse_event

log = logging.getLogger("mes_bridge.spool")

ALARM_RATIO = 0.8  # float-ok: a fill ratio, not money
DEFAULT_CAPACITY = 1_000_000
MAX_GROUP = 2_000  # readings per transaction: bounds one commit's time and memory

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spooled_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    machine TEXT NOT NULL,
    event_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    spooled_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS machine_state (
    machine TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
"""


class SpoolBusy(DomainError):
    """Another collector holds the spool: two writers would count the same machines twice."""


def _lock(path: Path) -> IO[str] | None:
    """Hold an exclusive lock on ``path`` for the life of the process (released by the OS on SIGKILL)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks; run one collector per spool by convention
        return None
    handle = path.open("a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise SpoolBusy(f"spool {path.with_suffix('')} is in use by {owner}: one collector per spool") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"collector pid {os.getpid()}")
    handle.flush()
    return handle


@dataclass(frozen=True, slots=True)
class _Reading:
    """One machine reading waiting for the writer: its events, the state that accounts for them, its outcome."""

    machine: str
    events: Sequence[OperationEvent]
    state: MachineState
    done: Future[bool]


_CLOSE = None


def _dumps(body: object) -> str:
    return json.dumps(body, separators=(",", ":"))


class Spool:
    """Bounded, fsync'd store of pending events and machine states; safe to share between threads."""

    def __init__(self, path: Path | str, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity <= 0:
            raise ValueError(f"spool capacity must be positive, got {capacity}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.capacity = capacity
        self._file_lock = _lock(self.path.with_name(self.path.name + ".lock"))
        self._lock = threading.Lock()
        # isolation_level=None: transactions are ours (BEGIN IMMEDIATE ... COMMIT), nothing implicit.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._depth = int(self._db.execute("SELECT COUNT(*) FROM spooled_events").fetchone()[0])
        self._alarmed = False
        self._queue: deque[_Reading | None] = deque()
        self._queued = threading.Condition()
        self._writer: threading.Thread | None = None
        self.groups = 0  # transactions committed by the writer (benchmarks, tests)

    def close(self) -> None:
        """Store what was submitted, stop the writer, close the file."""
        writer = self._writer
        if writer is not None:
            with self._queued:
                self._queue.append(_CLOSE)
                self._queued.notify()
            writer.join()
            self._writer = None
        with self._lock:
            self._db.close()
        if self._file_lock is not None:
            self._file_lock.close()
            self._file_lock = None

    # --- StateStore (used by MachineSession) ----------------------------------------------------------

    def load_state(self, machine: str) -> MachineState | None:
        with self._lock:
            row = self._db.execute("SELECT body FROM machine_state WHERE machine = ?", (machine,)).fetchone()
        return MachineState.from_json(json.loads(row[0])) if row else None

    def commit(self, machine: str, events: tuple[OperationEvent, ...] | Sequence[OperationEvent],
               state: MachineState) -> bool:
        """Spool ``events`` and persist ``state`` atomically, waiting for the commit; False if over capacity."""
        return self.submit(machine, events, state).result()

    def submit(self, machine: str, events: tuple[OperationEvent, ...] | Sequence[OperationEvent],
               state: MachineState) -> Future[bool]:
        """Queue a reading for the writer's next group commit; the future resolves once it is on disk.

        True when stored, False when it would exceed the capacity (nothing stored), the exception when it failed.
        """
        reading = _Reading(machine, tuple(events), state, Future())
        with self._queued:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_forever, name=f"spool {self.path.name}",
                                                daemon=True)
                self._writer.start()
            self._queue.append(reading)
            self._queued.notify()
        return reading.done

    def _write_forever(self) -> None:
        while True:
            with self._queued:
                while not self._queue:
                    self._queued.wait()
                group: list[_Reading] = []
                closing = False
                while self._queue and len(group) < MAX_GROUP:
                    item = self._queue.popleft()
                    if item is _CLOSE:
                        closing = True
                        break
                    group.append(item)
            if group:
                self._write_group(group)
            if closing:
                return

    def _write_group(self, group: list[_Reading]) -> None:
        now = datetime.now(UTC).isoformat()
        # Each reading is turned into rows first: one that cannot be (a bad event) fails alone, before any SQL.
        rows: list[tuple[_Reading, list[tuple[str, str, str, str]], str]] = []
        for reading in group:
            try:
                events = [(reading.machine, e.event_id, _dumps(e.to_json()), now) for e in reading.events]
                rows.append((reading, events, _dumps(reading.state.to_json())))
            except Exception as exc:
                reading.done.set_exception(exc)
        stored: list[_Reading] = []
        refused: list[_Reading] = []
        with self._lock:
            db = self._db
            depth = self._depth
            events_rows: list[tuple[str, str, str, str]] = []
            states: dict[str, str] = {}  # the last state of each machine in the group is the one that counts
            for reading, events, state in rows:
                if depth + len(events_rows) + len(events) > self.capacity:
                    refused.append(reading)
                    continue
                events_rows += events
                states[reading.machine] = state
                stored.append(reading)
            try:
                db.execute("BEGIN IMMEDIATE")
                added = db.executemany(
                    "INSERT OR IGNORE INTO spooled_events (machine, event_id, body, spooled_at) VALUES (?, ?, ?, ?)",
                    events_rows,
                ).rowcount
                db.executemany(
                    "INSERT INTO machine_state (machine, body, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (machine) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
                    [(machine, body, now) for machine, body in states.items()],
                )
                db.execute("COMMIT")
            except BaseException as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                for reading in stored:
                    reading.done.set_exception(exc)
                stored = []
            else:
                self._depth = depth + max(0, added)
                self.groups += 1
                if self.alarm and not self._alarmed:
                    self._alarmed = True
                    log.warning("spool %s is %d%% full (%d of %d events): the forwarder is not keeping up",
                                self.path, int(100 * self.fill), self._depth, self.capacity)
        for reading in stored:
            reading.done.set_result(True)
        for reading in refused:
            reading.done.set_result(False)


    # --- forwarding side ---------------------------------------------------------------------------

    def pending(self, limit: int) -> list[tuple[int, OperationEvent]]:
        """The oldest ``limit`` events, in spool order (per machine this is reading order)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body FROM spooled_events ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [(int(seq), parse_event(json.loads(body))) for seq, body in rows]

    def ack(self, seqs: Iterable[int]) -> int:
        """Remove acknowledged events; returns how many left the spool.

        Committed without its own fsync (``synchronous=NORMAL`` for this transaction): an ack lost to a power cut
        only sends those events again, which the service answers as duplicates; the next reading's commit (FULL)
        syncs the journal with the ack in it anyway. The disk's fsyncs are kept for the readings.
        """
        keys = list(seqs)
        if not keys:
            return 0
        with self._lock:
            db = self._db
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")
            try:
                removed = 0
                for i in range(0, len(keys), 500):  # well under SQLite's bound-parameter limit
                    chunk = keys[i: i + 500]
                    marks = ",".join("?" * len(chunk))
                    removed += db.execute(f"DELETE FROM spooled_events WHERE seq IN ({marks})", chunk).rowcount
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            finally:
                db.execute("PRAGMA synchronous=FULL")
            self._depth -= removed
            if self._alarmed and not self.alarm:
                self._alarmed = False
                log.info("spool %s back under %d%% (%d events)", self.path, int(100 * ALARM_RATIO), self._depth)
        return removed

    # --- health ------------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def fill(self) -> float:  # float-ok: a ratio for health, not a quantity
        return self._depth / self.capacity

    @property
    def alarm(self) -> bool:
        return self._depth >= ALARM_RATIO * self.capacity

    def oldest_age_s(self) -> float:  # float-ok: seconds
        """How long the oldest waiting event has been spooled (0 when empty): the length of an outage."""
        with self._lock:
            row = self._db.execute("SELECT spooled_at FROM spooled_events ORDER BY seq LIMIT 1").fetchone()
        if row is None:
            return 0.0
        return max(0.0, (datetime.now(UTC) - datetime.fromisoformat(row[0])).total_seconds())

    def depth_by_machine(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT machine, COUNT(*) FROM spooled_events GROUP BY machine").fetchall()
        return {str(m): int(n) for m, n in rows}
