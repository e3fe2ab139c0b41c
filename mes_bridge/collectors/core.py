"""The protocol-independent collector: machine counter values in, deterministic ``OperationEvent``s out.

A protocol client (OPC UA, Modbus) delivers ``Snapshot``s to a ``MachineSession``; the session asks the pure
``advance()`` what the reading means against the persisted ``MachineState`` and hands the events and the new
state to its ``StateStore`` (the spool) in one durable transaction.

Invariants:
- Counters are the truth: an event covers the delta between the persisted position and the value read, so a
  reading after a reconnect or a restart emits exactly what happened meanwhile, and nothing twice.
- The event id is ``"{machine}:{counter}:{epoch}:{value}"``, ``value`` being the counter unwrapped past its
  16/32-bit rollovers within the epoch: replaying a reading from the same state gives the same ids.
- A drop that is not a rollover is a controller reset: a new epoch starts, the new value counts from 0.
  (Parts made between the last reading and the reset are not in any counter value: they cannot be counted.)
- The position only moves when the events covering it are stored (``StateStore.commit`` returns True);
  when the spool refuses (full), or no work order is known, the position stays and the counts wait.
- Counts up to a job change belong to the job in effect at the previous reading. A work order scanned at the
  machine's terminal takes effect after the first reading taken once the scan is known (clients read at once
  when asked), so the counts made before the scan stay with the previous order.
- The kWh meter delta since the last attribution goes to the parts events of the reading, split by quantity
  (the last event takes what remains, so nothing is lost or created).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from mes_bridge.plc_config import MachineConfig, TagSpec
from mes_common.provenance import Provenance
from wip_costing.events import OperationEvent

log = logging.getLogger("mes_bridge.collectors")

Value = int | Decimal | str | None
KWH_PLACES = Decimal("0.000001")
# Collector records that are routine (logged at INFO); every other kind is a warning.
QUIET_RECORDS = frozenset({"counter-baseline", "job-change", "work-order-scanned", "spool-resumed"})


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One reading of a machine: counter names, "job" and "energy" to their values (None = not readable)."""

    machine: str
    values: Mapping[str, Value]
    read_at: datetime
    reason: str  # "connect" | "change" | "poll" | "job-change"


@dataclass(frozen=True, slots=True)
class CounterPosition:
    """Where a counter was last turned into events: its epoch, raw value and value unwrapped past rollovers."""

    epoch: int
    raw: int
    total: int


@dataclass(frozen=True, slots=True)
class MachineState:
    """Everything persisted per machine between readings (and across restarts)."""

    counters: Mapping[str, CounterPosition] = field(default_factory=dict)
    energy: Decimal | None = None  # last kWh meter reading
    kwh_pending: Decimal = Decimal(0)  # metered since the last parts event, not yet attributed
    job: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "counters": {k: [p.epoch, p.raw, p.total] for k, p in sorted(self.counters.items())},
            "energy": None if self.energy is None else str(self.energy),
            "kwh_pending": str(self.kwh_pending),
            "job": self.job,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> MachineState:
        counters = {k: CounterPosition(int(v[0]), int(v[1]), int(v[2])) for k, v in raw.get("counters", {}).items()}
        energy = raw.get("energy")
        return cls(counters=counters, energy=None if energy is None else Decimal(energy),
                   kwh_pending=Decimal(raw.get("kwh_pending", "0")), job=raw.get("job"))


@dataclass(frozen=True, slots=True)
class Record:
    """An explicit collector event worth a log line and a metric (reset, rollover, gap, spool full...)."""

    kind: str
    detail: str


@dataclass(frozen=True, slots=True)
class Advance:
    """What one snapshot means: the events to spool, the state to persist with them, and what to record."""

    events: tuple[OperationEvent, ...]
    state: MachineState
    records: tuple[Record, ...]
    changed: bool  # the state differs (something to persist even without events)


def _as_int(value: Value) -> int | None:
    if value is None or isinstance(value, str):
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else None
    return int(value)


def counter_step(
    tag: TagSpec, name: str, old: CounterPosition | None, raw: int
) -> tuple[CounterPosition, int, Record | None]:
    """New position, parts counted and an optional record for a counter read at ``raw``."""
    if old is None:
        # First sighting: parts made before the collector knew the machine are not ours to count.
        return CounterPosition(0, raw, raw), 0, Record("counter-baseline", f"{name} first read at {raw}")
    if raw >= old.raw:
        delta = raw - old.raw
        return CounterPosition(old.epoch, raw, old.total + delta), delta, None
    modulus = 1 << tag.counter_bits
    wrapped = raw + modulus - old.raw
    if old.raw >= modulus - tag.window and wrapped <= tag.window:
        return (CounterPosition(old.epoch, raw, old.total + wrapped), wrapped,
                Record("counter-rollover", f"{name} rolled over at {tag.counter_bits} bits: {old.raw} -> {raw}"))
    return (CounterPosition(old.epoch + 1, raw, raw), raw,
            Record("counter-reset", f"{name} dropped {old.raw} -> {raw}: epoch {old.epoch + 1}, counted from 0"))


def split_kwh(kwh: Decimal, quantities: list[Decimal]) -> list[Decimal]:
    """Share ``kwh`` by quantity; the last share takes exactly what remains."""
    total = sum(quantities, Decimal(0))
    shares: list[Decimal] = []
    left = kwh
    for i, qty in enumerate(quantities):
        if i == len(quantities) - 1:
            shares.append(left)
        else:
            share = (kwh * qty / total).quantize(KWH_PLACES)
            shares.append(share)
            left -= share
    return shares


def advance(config: MachineConfig, state: MachineState, snapshot: Snapshot,
            scanned_work_order: str | None = None) -> Advance:
    """The pure core: what a reading means against the persisted state. No I/O.

    Work order: the job tag (as it was at the previous reading), else the last work order scanned at the
    machine's terminal, else the config's ``work_order``; with none, counts are held, not lost.
    """
    records: list[Record] = []
    job_tag = config.job
    job_now = job_tag.job_text(snapshot.values.get("job")) if job_tag is not None and "job" in snapshot.values else None
    if job_tag is not None and "job" not in snapshot.values:
        job_now = state.job  # job tag not delivered: keep what we knew
    # Counts up to a job change belong to the job in effect at the previous reading.
    work_order = (state.job if state.counters else None) or job_now or scanned_work_order or config.work_order

    positions = dict(state.counters)
    parts: list[tuple[str, CounterPosition, int]] = []
    for name, tag in config.counters.items():
        raw = _as_int(snapshot.values.get(name))
        if raw is None:
            continue
        new_pos, delta, record = counter_step(tag, name, positions.get(name), raw)
        if record is not None:
            records.append(record)
        if delta > 0:
            parts.append((name, new_pos, delta))
        else:
            positions[name] = new_pos

    energy_last, kwh_pending = state.energy, state.kwh_pending
    energy_now = snapshot.values.get("energy")
    if isinstance(energy_now, Decimal | int) and not isinstance(energy_now, bool):
        reading = Decimal(energy_now)
        if energy_last is not None and reading < energy_last:
            records.append(Record("energy-reset", f"kWh meter dropped {energy_last} -> {reading}: counted from 0"))
            kwh_pending += reading
        elif energy_last is not None:
            kwh_pending += reading - energy_last
        energy_last = reading

    events: list[OperationEvent] = []
    if parts and work_order is None:
        records.append(Record("no-work-order", "parts counted but no job tag or work order known: counts held"))
    elif parts:
        metered = config.energy is not None and energy_last is not None
        kwh_shares: list[Decimal | None] = (
            list(split_kwh(kwh_pending, [Decimal(d) for _, _, d in parts])) if metered else [None] * len(parts)
        )
        for (name, pos, delta), share in zip(parts, kwh_shares, strict=True):
            quantity_field = config.event_field(name)
            quantities = {f: Decimal(delta) if f == quantity_field else Decimal(0) for f in ("good", "scrap", "rework")}
            events.append(OperationEvent(
                event_id=f"{config.machine}:{name}:{pos.epoch}:{pos.total}",
                source_time=snapshot.read_at,
                provenance=Provenance.SENSOR,
                work_order=work_order,
                operation=config.event_operation(),
                machine=config.machine,
                work_center=config.work_center,
                kwh=share,
                good=quantities["good"],
                scrap=quantities["scrap"],
                rework=quantities["rework"],
            ))
            positions[name] = pos
        if metered:
            kwh_pending = Decimal(0)

    new_state = MachineState(counters=positions, energy=energy_last, kwh_pending=kwh_pending,
                             job=job_now if job_tag is not None else state.job)
    if job_tag is not None and job_now != state.job and state.counters:
        records.append(Record("job-change", f"job {state.job!r} -> {job_now!r}"))
    return Advance(tuple(events), new_state, tuple(records), new_state != state)


class StateStore(Protocol):
    """Durable home of machine states and spooled events (``mes_bridge.spool.Spool``)."""

    def load_state(self, machine: str) -> MachineState | None: ...

    def submit(self, machine: str, events: tuple[OperationEvent, ...], state: MachineState) -> Future[bool]:
        """Store events and state in one durable transaction; the future resolves once that is on disk:
        True, or False (nothing stored) when the spool is full."""
        ...


def stored_now(outcome: bool) -> Future[bool]:
    """An already resolved ``submit`` outcome, for stores that write synchronously (in memory)."""
    done: Future[bool] = Future()
    done.set_result(outcome)
    return done


class SessionObserver(Protocol):
    """Health and metrics sink for a machine session (``mes_bridge.metrics``)."""

    def connected(self, machine: str, up: bool) -> None: ...

    def value_read(self, machine: str, at: datetime) -> None: ...

    def events_spooled(self, machine: str, count: int) -> None: ...

    def recorded(self, machine: str, kind: str, detail: str) -> None: ...

    def error(self, machine: str, error: str | None) -> None:
        """The machine's standing problems now (unusable nodes, lost connection), None when there are none."""
        ...


class NullObserver:
    def connected(self, machine: str, up: bool) -> None:
        pass

    def value_read(self, machine: str, at: datetime) -> None:
        pass

    def events_spooled(self, machine: str, count: int) -> None:
        pass

    def recorded(self, machine: str, kind: str, detail: str) -> None:
        pass

    def error(self, machine: str, error: str | None) -> None:
        pass


class MachineSession:
    """One machine's collector state: turns snapshots into spooled events, reports health.

    ``on_snapshot`` is serialised per machine; the SQLite commit (with fsync) runs in the spool's writer thread,
    shared with the other machines' readings, so a slow disk never blocks the event loop.
    """

    def __init__(self, config: MachineConfig, store: StateStore, observer: SessionObserver | None = None) -> None:
        self.config = config
        self.machine = config.machine
        self.store = store
        self.observer: SessionObserver = observer or NullObserver()
        self.connected = False
        self.state: MachineState | None = None
        self.last_snapshot: Snapshot | None = None
        self._lock = asyncio.Lock()
        self._spool_full = False
        self._held = False
        # The last work order scanned at this machine's terminal (see ``scan``).
        self.scanned_work_order: str | None = None
        self._pending_scan: tuple[str | None, datetime] | None = None
        # Set to ask the protocol client for a full reading now (it clears it when it reads).
        self.read_requested = asyncio.Event()
        # Standing problems by subject ("connection", "node good", ...): what the machine's health shows as error.
        self.problems: dict[str, str] = {}

    def scan(self, work_order: str | None) -> None:
        """A work order was scanned at this machine's terminal.

        The counts made up to now belong to the previous order, so the client is asked for a reading at once;
        the new order applies from the first reading taken after this call (which still counts for the old one).
        """
        target = self._pending_scan[0] if self._pending_scan is not None else self.scanned_work_order
        if work_order == target:
            return
        self._pending_scan = (work_order, datetime.now(UTC))
        self.read_requested.set()

    def _take_scan(self, snapshot: Snapshot) -> None:
        if self._pending_scan is None or snapshot.read_at < self._pending_scan[1]:
            return
        previous = self.scanned_work_order
        self.scanned_work_order = self._pending_scan[0]
        self._pending_scan = None
        self.record("work-order-scanned", f"work order {previous!r} -> {self.scanned_work_order!r} "
                                          f"(counts up to {snapshot.read_at.isoformat()} went to {previous!r})")

    async def on_snapshot(self, snapshot: Snapshot) -> None:
        async with self._lock:
            current = self.state
            if current is None:
                current = await asyncio.to_thread(self.store.load_state, self.machine) or MachineState()
            self.last_snapshot = snapshot
            self.observer.value_read(self.machine, snapshot.read_at)
            result = advance(self.config, current, snapshot, self.scanned_work_order)
            for rec in result.records:
                if rec.kind == "no-work-order" and self._held:
                    continue  # said once per episode, not on every poll
                self.record(rec.kind, rec.detail)
            self._held = any(rec.kind == "no-work-order" for rec in result.records)
            if not result.changed:
                self.state = current
                self._take_scan(snapshot)
                return
            # Group commit: the spool's writer stores this reading with the others that arrive meanwhile.
            stored = await asyncio.wrap_future(self.store.submit(self.machine, result.events, result.state))
            if not stored:
                self.state = current
                if not self._spool_full:
                    self._spool_full = True
                    self.record("spool-full", f"spool full: {len(result.events)} events held, the machine keeps "
                                              "counting and they are emitted once the spool drains")
                return
            if self._spool_full:
                self._spool_full = False
                self.record("spool-resumed", "spool has room again: counts resumed")
            # Only now, with the events durable, does the session's position move on.
            self.state = result.state
            self._take_scan(snapshot)
            if result.events:
                self.observer.events_spooled(self.machine, len(result.events))

    @property
    def error(self) -> str | None:
        return "; ".join(self.problems[key] for key in sorted(self.problems)) or None

    def problem(self, subject: str, detail: str | None) -> None:
        """Set (or with None clear) a standing problem of this machine, shown in its health until cleared."""
        if detail is None:
            if self.problems.pop(subject, None) is None:
                return
        elif self.problems.get(subject) == detail:
            return
        else:
            self.problems[subject] = detail
        self.observer.error(self.machine, self.error)

    def on_connected(self) -> None:
        self.problem("connection", None)
        self.connected = True
        self.observer.connected(self.machine, True)
        log.info("%s: connected to %s", self.machine, self.config.endpoint)

    def on_disconnected(self, reason: str, *, logged: bool = True) -> None:
        was = self.connected
        self.connected = False
        self.observer.connected(self.machine, False)
        if was:
            self.record("disconnected", reason, logged=logged)
        if reason != "collector stopped":
            self.problem("connection", f"disconnected from {self.config.endpoint}: {reason}")

    def record(self, kind: str, detail: str, *, logged: bool = True) -> None:
        """An explicit collector event: logged and counted (counter backwards, reconnect gap, ...).

        ``logged=False``: counted and shown in the health, logged at debug level only — for an event of a shared
        connection, which its client logs once for all its machines."""
        quiet = kind in QUIET_RECORDS or detail == "collector stopped" or not logged
        level = logging.DEBUG if not logged else logging.INFO if quiet else logging.WARNING
        log.log(level, "%s: %s: %s", self.machine, kind, detail)
        self.observer.recorded(self.machine, kind, detail)

