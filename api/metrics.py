"""The API's Prometheus metrics (``GET /metrics``), on a registry owned by the app (several apps in one process,
as in tests, never clash), or, under ``mes-bridge serve --workers N`` (N > 1), in prometheus_client's multiprocess
mode so that whichever worker answers shows the whole server:

- ``mes_api_request_seconds{method, route, status}``: latency per route template (``/work-orders/{order_id}``);
- ``mes_api_events_total{status}``: events taken through the API by outcome (applied, duplicate, conflict,
  rejected);
- ``mes_api_requests_in_progress``: requests being answered (summed over live workers);
- ``mes_collector_*{machine}``: the collectors' health as they last reported it (read from the database when
  scraped, so every API process shows the same).

Multiprocess mode: ``serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` to an empty per-server directory before the workers
start (prometheus_client picks its value store when first imported, so the variable must be there before). Each
worker writes its counters and histograms to its own files there; ``/metrics`` merges every worker's files with a
``MultiProcessCollector`` (a dead or restarted worker's counts stay in the totals, as counters should) and adds
the collectors' health from the database. The in-progress gauge counts only live workers (``livesum``): a worker
marks itself dead when it shuts down, and a scrape marks workers that died without shutting down.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wip_costing.events import EventOutcome

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _CollectorHealth(Collector):
    def __init__(self, read: Callable[[], list[dict[str, Any]]]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        connected = GaugeMetricFamily("mes_collector_connected", "1 when the machine is connected (as reported)",
                                      labels=["machine"])
        age = GaugeMetricFamily("mes_collector_last_value_age_seconds", "seconds since the last reading (as reported)",
                                labels=["machine"])
        depth = GaugeMetricFamily("mes_collector_spool_depth", "events waiting in the collector's spool",
                                  labels=["machine"])
        rate = GaugeMetricFamily("mes_collector_events_per_second", "events per second (as reported)",
                                 labels=["machine"])
        report_age = GaugeMetricFamily("mes_collector_report_age_seconds", "seconds since the collector reported",
                                       labels=["machine"])
        for row in self.read():
            labels = [row["machine"]]
            connected.add_metric(labels, 1.0 if row["connected"] else 0.0)
            age.add_metric(labels, -1.0 if row["last_value_age_s"] is None else float(row["last_value_age_s"]))
            depth.add_metric(labels, float(row["spool_depth"]))
            rate.add_metric(labels, float(row["events_per_s"]))
            report_age.add_metric(labels, float(row["report_age_s"]))
        return [connected, age, depth, rate, report_age]


def multiprocess_dir() -> Path | None:
    """The directory of multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by ``serve --workers N``), or None.

    Refuses a directory that prometheus_client cannot be using: its value store was chosen when it was first
    imported, before the variable was set (the workers would each count alone, silently)."""
    found = os.environ.get(MULTIPROC_ENV)
    if not found:
        return None
    if values.ValueClass is values.MutexValue:
        raise RuntimeError(f"{MULTIPROC_ENV}={found} was set after prometheus_client was imported: set it before the "
                           "process starts (mes-bridge serve does)")
    if not Path(found).is_dir():
        raise RuntimeError(f"{MULTIPROC_ENV}={found} is not a directory")
    return Path(found)


def mark_dead_workers(path: Path) -> list[int]:
    """Mark every process that left live-gauge files in ``path`` but is no longer running (killed without
    shutting down) as dead, so ``live*`` gauges stop counting it; the pids marked."""
    marked = []
    for pid in sorted({int(f.stem.rsplit("_", 1)[1]) for f in path.glob("gauge_live*_*.db")}):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(path))
            marked.append(pid)
        except PermissionError:  # alive, under another user
            pass
    return marked


class ApiMetrics:
    """The app's metrics. ``shared``: the directory of prometheus_client's multiprocess mode (None: this
    process alone, on a registry of its own)."""

    def __init__(self, machine_health: Callable[[], list[dict[str, Any]]], shared: Path | None = None) -> None:
        self.shared = shared
        # In multiprocess mode the values live in the directory's files whatever registry holds the metrics; the
        # exposition registry reads those files, so the metrics themselves must not be on it (counted twice).
        own = CollectorRegistry()
        self.requests = Histogram("mes_api_request_seconds", "request latency per route", ["method", "route", "status"],
                                  buckets=BUCKETS, registry=own)
        self.events = Counter("mes_api_events", "events taken through POST /events and /scan/report, by outcome",
                              ["status"], registry=own)
        self.in_progress = Gauge("mes_api_requests_in_progress", "requests being answered (live workers)",
                                 registry=own, multiprocess_mode="livesum")
        if shared is None:
            self.registry = own
        else:
            self.registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.registry, str(shared))
        self.registry.register(_CollectorHealth(machine_health))

    def outcomes(self, outcomes: Sequence[EventOutcome]) -> None:
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.status.value] = counts.get(outcome.status.value, 0) + 1
        for status, count in counts.items():
            self.events.labels(status).inc(count)

    def render(self) -> bytes:
        if self.shared is not None:
            mark_dead_workers(self.shared)
        return generate_latest(self.registry)

    def worker_exits(self) -> None:
        """This worker is shutting down: its live gauges stop counting (its counters stay in the totals)."""
        if self.shared is not None:
            multiprocess.mark_process_dead(os.getpid(), str(self.shared))


class LatencyMiddleware:
    """Times every HTTP request and labels it with the route template it matched (``unmatched`` otherwise)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        self.metrics.in_progress.inc()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.in_progress.dec()
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started)
