"""Collector health: per machine connection, last value age, events/s, recorded events; spool depth.

Exposed two ways from the same figures: Prometheus metrics on an own ``CollectorRegistry`` (so several
collectors in one process, e.g. tests, never clash on the global registry) and a ``health()`` dict for the
API and the dashboard. Rates and ages are ``float`` seconds: health figures, never money.  # float-ok
"""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from mes_bridge.spool import Spool
from wip_costing.events import EventOutcome

RATE_WINDOW_S = 60.0  # float-ok: seconds
RECENT_RECORDS = 50


@dataclass
class _Machine:
    connected: bool = False
    last_read_mono: float | None = None  # float-ok: monotonic seconds
    last_read_at: datetime | None = None
    events_total: int = 0
    spooled: deque[tuple[float, int]] = field(default_factory=deque)  # float-ok: (monotonic, count)
    records: deque[dict[str, str]] = field(default_factory=lambda: deque(maxlen=RECENT_RECORDS))
    error: str | None = None  # standing problems (unusable nodes, lost connection), named


class CollectorMetrics:
    """Implements the session and forwarder observers; renders Prometheus text and a health dict."""

    def __init__(self, spool: Spool | None = None) -> None:
        self.spool = spool
        self.registry = CollectorRegistry()
        self._machines: dict[str, _Machine] = {}
        self.forward_errors = 0
        self.last_forward_error: str | None = None
        self.outcomes: dict[str, int] = {}
        r = self.registry
        self._connected = Gauge("mes_collector_connected", "1 when the machine is connected", ["machine"], registry=r)
        self._age = Gauge("mes_collector_last_value_age_seconds", "seconds since the last reading", ["machine"],
                          registry=r)
        self._events = Counter("mes_collector_events_spooled", "events spooled", ["machine"], registry=r)
        self._rate = Gauge("mes_collector_events_per_second", f"events spooled per second over {RATE_WINDOW_S:.0f}s",
                           ["machine"], registry=r)
        self._records = Counter("mes_collector_records", "recorded collector events", ["machine", "kind"],
                                registry=r)
        self._forwarded = Counter("mes_collector_forwarded", "events acknowledged by the service", ["status"],
                                  registry=r)
        self._forward_errors = Counter("mes_collector_forward_errors", "failed forward attempts", registry=r)
        depth = Gauge("mes_collector_spool_depth", "events waiting in the spool", registry=r)
        depth.set_function(lambda: float(self.spool.depth) if self.spool else 0.0)
        capacity = Gauge("mes_collector_spool_capacity", "spool capacity in events", registry=r)
        capacity.set_function(lambda: float(self.spool.capacity) if self.spool else 0.0)
        oldest = Gauge("mes_collector_spool_oldest_seconds", "age of the oldest event waiting in the spool",
                       registry=r)
        oldest.set_function(lambda: self.spool.oldest_age_s() if self.spool else 0.0)
        alarm = Gauge("mes_collector_spool_alarm", "1 when the spool is at least 80% full", registry=r)
        alarm.set_function(lambda: 1.0 if self.spool and self.spool.alarm else 0.0)

    def _m(self, machine: str) -> _Machine:
        if machine not in self._machines:
            self._machines[machine] = _Machine()
            self._age.labels(machine).set_function(functools.partial(self._age_of, machine))
            self._rate.labels(machine).set_function(functools.partial(self._rate_of, machine))
            self._connected.labels(machine).set(0)
        return self._machines[machine]

    def add_machine(self, machine: str) -> None:
        self._m(machine)

    # --- SessionObserver ------------------------------------------------------------------------

    def connected(self, machine: str, up: bool) -> None:
        self._m(machine).connected = up
        self._connected.labels(machine).set(1 if up else 0)

    def value_read(self, machine: str, at: datetime) -> None:
        m = self._m(machine)
        m.last_read_mono = time.monotonic()
        m.last_read_at = at

    def events_spooled(self, machine: str, count: int) -> None:
        m = self._m(machine)
        m.events_total += count
        m.spooled.append((time.monotonic(), count))
        self._events.labels(machine).inc(count)

    def recorded(self, machine: str, kind: str, detail: str) -> None:
        self._m(machine).records.append({"at": datetime.now().astimezone().isoformat(), "kind": kind,
                                         "detail": detail})
        self._records.labels(machine, kind).inc()

    def error(self, machine: str, error: str | None) -> None:
        self._m(machine).error = error

    # --- ForwardObserver ------------------------------------------------------------------------

    def forwarded(self, outcomes: Sequence[EventOutcome]) -> None:
        for outcome in outcomes:
            status = outcome.status.value
            self.outcomes[status] = self.outcomes.get(status, 0) + 1
            self._forwarded.labels(status).inc()

    def forward_failed(self, error: str) -> None:
        self.forward_errors += 1
        self.last_forward_error = error
        self._forward_errors.inc()

    # --- figures ---------------------------------------------------------------------------------

    def _age_of(self, machine: str) -> float:  # float-ok: seconds
        m = self._machines[machine]
        return -1.0 if m.last_read_mono is None else time.monotonic() - m.last_read_mono

    def _rate_of(self, machine: str) -> float:  # float-ok: events per second
        m = self._machines[machine]
        horizon = time.monotonic() - RATE_WINDOW_S
        while m.spooled and m.spooled[0][0] < horizon:
            m.spooled.popleft()
        return sum(n for _, n in m.spooled) / RATE_WINDOW_S

    def health(self) -> dict[str, Any]:
        machines = {
            name: {
                "connected": m.connected,
                "last_value_age_s": None if m.last_read_mono is None else round(self._age_of(name), 3),
                "last_read_at": None if m.last_read_at is None else m.last_read_at.isoformat(),
                "events_total": m.events_total,
                "events_per_s": round(self._rate_of(name), 3),
                "records": list(m.records),
                "error": m.error,
            }
            for name, m in sorted(self._machines.items())
        }
        spool: dict[str, Any] = {}
        if self.spool is not None:
            spool = {"depth": self.spool.depth, "capacity": self.spool.capacity, "fill": round(self.spool.fill, 4),
                     "alarm": self.spool.alarm, "oldest_age_s": round(self.spool.oldest_age_s(), 3)}
        return {"machines": machines, "spool": spool,
                "forwarder": {"outcomes": dict(self.outcomes), "errors": self.forward_errors,
                              "last_error": self.last_forward_error}}

    def render(self) -> bytes:
        """Prometheus text exposition of this collector's registry."""
        return generate_latest(self.registry)
