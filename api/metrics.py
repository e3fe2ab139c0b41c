"""The API's Prometheus metrics (``GET /metrics``), on a registry owned by the app (several apps in one process,
as in tests, never clash):

- ``mes_api_request_seconds{method, route, status}``: latency per route template (``/work-orders/{order_id}``);
- ``mes_api_events_total{status}``: events taken through the API by outcome (applied, duplicate, conflict,
  rejected);
- ``mes_collector_*{machine}``: the collectors' health as they last reported it (read from the database when
  scraped, so every API process shows the same).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wip_costing.events import EventOutcome

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


class ApiMetrics:
    def __init__(self, machine_health: Callable[[], list[dict[str, Any]]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram("mes_api_request_seconds", "request latency per route", ["method", "route", "status"],
                                  buckets=BUCKETS, registry=self.registry)
        self.events = Counter("mes_api_events", "events taken through POST /events and /scan/report, by outcome",
                              ["status"], registry=self.registry)
        self.registry.register(_CollectorHealth(machine_health))

    def outcomes(self, outcomes: Sequence[EventOutcome]) -> None:
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.status.value] = counts.get(outcome.status.value, 0) + 1
        for status, count in counts.items():
            self.events.labels(status).inc(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)


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

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started)
