"""Store-and-forward, second half: spooled events to the central service, in order, acknowledged.

Invariants:
- An event leaves the spool only when the service answered with an outcome for it (applied, duplicate,
  conflict or rejected: all are stored centrally). An exception, or an answer missing an event, means
  not acknowledged: the same events are sent again after a capped, jittered backoff.
- Batches are taken in spool order, so each machine's events arrive in the order they were read; per
  machine only the answered prefix of a batch is acknowledged.
- Re-sending is harmless: ids are deterministic and the service answers "duplicate".
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sqlite3
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import httpx

from mes_bridge.spool import Spool
from wip_costing.events import EventOutcome, OperationEvent, Status, parse_event

if TYPE_CHECKING:
    from mes_bridge.bootstrap import Services

log = logging.getLogger("mes_bridge.forwarder")


class Forwarder(Protocol):
    async def forward(self, events: Sequence[OperationEvent]) -> Sequence[EventOutcome]: ...


class ForwardObserver(Protocol):
    def forwarded(self, outcomes: Sequence[EventOutcome]) -> None: ...

    def forward_failed(self, error: str) -> None: ...


def backoff_delay(attempt: int, base: float = 0.2, cap: float = 30.0) -> float:  # float-ok: seconds
    """Capped exponential backoff with full jitter (so many collectors do not retry in step)."""
    ceiling = min(cap, base * (2 ** min(attempt, 20)))
    return random.uniform(ceiling / 2, ceiling)


class InProcessForwarder:
    """Applies events through the service layer in this process (``Services.handle(ApplyEvents(...))``, the
    handler the API uses too).

    ``switch_interval`` (seconds; off by default, and never for a web process): while a batch is applied, the
    interpreter hands its lock to a waiting thread after this long instead of the default 5 ms, so the thread that
    loads a large batch on PostgreSQL (``wip_costing.batch_stream``) is not kept waiting by the thread computing
    it. The setting is process-wide, which is why only a worker that owns its process (``mes-bridge collect``)
    may ask for it; it is restored after each batch (``switch_interval`` below)."""

    def __init__(self, services: Services, switch_interval: float | None = None) -> None:  # float-ok: seconds
        self.services = services
        self.switch_interval = switch_interval

    async def forward(self, events: Sequence[OperationEvent]) -> Sequence[EventOutcome]:
        return list(await asyncio.to_thread(self.apply, list(events)))

    def apply(self, events: list[OperationEvent]) -> list[EventOutcome]:
        from wip_costing.commands import ApplyEvents  # imported late: the collector edge may not need it

        with switch_interval(self.switch_interval):
            outcomes: list[EventOutcome] = self.services.handle(ApplyEvents(events))
        return outcomes


_switch_lock = threading.Lock()
_switch_users = 0
_switch_saved = 0.0


@contextmanager
def switch_interval(seconds: float | None) -> Iterator[None]:  # float-ok: seconds
    """The interpreter's switch interval at most ``seconds`` inside the block (None: left alone), restored when the
    last block using it ends (blocks may overlap in threads: the first one saves the setting, the last restores
    it)."""
    global _switch_users, _switch_saved
    if seconds is None:
        yield
        return
    with _switch_lock:
        if _switch_users == 0:
            _switch_saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_switch_saved, seconds))
        _switch_users += 1
    try:
        yield
    finally:
        with _switch_lock:
            _switch_users -= 1
            if _switch_users == 0:
                sys.setswitchinterval(_switch_saved)


class HttpForwarder:
    """``POST {base}/events`` with a bearer token; the response is one outcome per event."""

    def __init__(self, base_url: str, token: str, timeout: float = 30.0,  # float-ok: seconds
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = base_url.rstrip("/") + "/events"
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport,
                                         headers={"Authorization": f"Bearer {token}"})

    async def forward(self, events: Sequence[OperationEvent]) -> Sequence[EventOutcome]:
        response = await self._client.post(self.url, json=[e.to_json() for e in events])
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, list):
            raise ValueError(f"{self.url} answered {type(body).__name__}, expected a list of outcomes")
        return [
            EventOutcome(item.get("event_id"), Status(item["status"]), item.get("reason")) for item in body
        ]

    async def aclose(self) -> None:
        await self._client.aclose()


class SinkUnavailable(ConnectionError):
    """The test sink is switched off (simulated database or network outage)."""


class RecordingSink:
    """A stand-in for the central service in tests: keeps the first copy of each event id.

    With ``path`` it is a SQLite file that survives the process (for kill -9 tests); ``available = False``
    makes ``forward`` raise ``SinkUnavailable`` like a dropped link.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.available = True
        self.calls = 0
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None, check_same_thread=False,
                                   timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, body TEXT NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS received (n INTEGER PRIMARY KEY, event_id TEXT NOT NULL)")

    async def forward(self, events: Sequence[OperationEvent]) -> Sequence[EventOutcome]:
        self.calls += 1
        if not self.available:
            raise SinkUnavailable("recording sink is unavailable")
        return self.store(events)

    def store(self, events: Sequence[OperationEvent]) -> list[EventOutcome]:
        outcomes: list[EventOutcome] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            for event in events:
                body = json.dumps(event.to_json(), sort_keys=True)
                self._db.execute("INSERT INTO received (event_id) VALUES (?)", (event.event_id,))
                row = self._db.execute("SELECT body FROM events WHERE event_id = ?", (event.event_id,)).fetchone()
                if row is None:
                    self._db.execute("INSERT INTO events (event_id, body) VALUES (?, ?)", (event.event_id, body))
                    outcomes.append(EventOutcome(event.event_id, Status.APPLIED))
                elif row[0] == body:
                    outcomes.append(EventOutcome(event.event_id, Status.DUPLICATE))
                else:
                    outcomes.append(EventOutcome(event.event_id, Status.CONFLICT, "same id, different content"))
            self._db.execute("COMMIT")
        return outcomes

    def events(self) -> list[OperationEvent]:
        with self._lock:
            rows = self._db.execute("SELECT body FROM events ORDER BY rowid").fetchall()
        return [parse_event(json.loads(body)) for (body,) in rows]

    def received_count(self) -> int:
        """Every event delivered, duplicates included."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM received").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


async def forward_once(spool: Spool, forwarder: Forwarder, batch_size: int = 500,
                       observer: ForwardObserver | None = None) -> int:
    """Send the oldest batch; acknowledge what came back with an outcome. Returns events acknowledged.

    Raises what the forwarder raised (nothing is acknowledged then).
    """
    batch = await asyncio.to_thread(spool.pending, batch_size)
    if not batch:
        return 0
    outcomes = await forwarder.forward([event for _, event in batch])
    answered = {o.event_id: o for o in outcomes}
    # Per machine only the prefix that was answered leaves: a later event never overtakes an unanswered one.
    stalled: set[str | None] = set()
    done: list[int] = []
    for seq, event in batch:
        if event.machine in stalled:
            continue
        if event.event_id in answered:
            done.append(seq)
        else:
            stalled.add(event.machine)
    missing = len(batch) - len(done)
    if missing:
        log.warning("forwarder: %d of %d events got no outcome; they stay spooled and are sent again",
                    missing, len(batch))
    for outcome in outcomes:
        if outcome.status in (Status.CONFLICT, Status.REJECTED):
            log.warning("event %s %s: %s", outcome.event_id, outcome.status.value, outcome.reason)
    # Outcomes are counted before the acknowledgement: whoever sees the spool empty (health, tests, the demo)
    # then also sees every answer that emptied it counted.
    if observer is not None:
        observer.forwarded(outcomes)
    await asyncio.to_thread(spool.ack, done)
    return len(done)


async def forward_loop(spool: Spool, forwarder: Forwarder, stop: asyncio.Event, *, batch_size: int = 500,
                       idle_s: float = 0.1, backoff_cap_s: float = 30.0,  # float-ok: seconds
                       observer: ForwardObserver | None = None) -> None:
    """Forward until ``stop`` is set; on stop, one last drain attempt so a clean shutdown leaves little behind."""
    attempt = 0
    while True:
        try:
            sent = await forward_once(spool, forwarder, batch_size, observer)
            attempt = 0
        except Exception as exc:  # any failure of the link or the service: keep the events, retry later
            attempt += 1
            delay = backoff_delay(attempt, cap=backoff_cap_s)
            log.warning("forwarder: %s: %s; %d events spooled, retry in %.1fs", type(exc).__name__, exc,
                        spool.depth, delay)
            if observer is not None:
                observer.forward_failed(f"{type(exc).__name__}: {exc}")
            if stop.is_set():
                return
            await sleep_or_stop(stop, delay)
            continue
        if stop.is_set():
            if sent == 0 or spool.depth == 0:
                return
            continue
        if sent == 0:
            await sleep_or_stop(stop, idle_s)


async def sleep_or_stop(stop: asyncio.Event, seconds: float,  # float-ok: seconds
                        wake: asyncio.Event | None = None) -> None:
    """Sleep ``seconds``, less if ``stop`` (or ``wake``) is set meanwhile."""
    waiters = [asyncio.ensure_future(event.wait()) for event in (stop, wake) if event is not None]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
