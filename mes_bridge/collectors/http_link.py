"""A collector forwarding over HTTP talks to the API for two more things than its events: the work order last
scanned at each of its machines (``GET /machines/work-orders?machine=...``, so it follows scans just as an in-process
collector does) and its health (``POST /collectors/health``, shown on the dashboard and in ``/metrics``).

Both are best effort: a failure is logged once and tried again; machines keep their orders meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from mes_bridge.forwarder import sleep_or_stop
from mes_bridge.metrics import CollectorMetrics

log = logging.getLogger("mes_bridge.collectors.http_link")

CHUNK = 200  # machines per request: a query string of a few kB, well inside the API's limit of 500


class HttpScanFeed:
    """``ScanFeed`` over the API: the latest scanned work order of each machine (blocking; run in a thread)."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0,  # float-ok: seconds
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport,
                                    headers={"Authorization": f"Bearer {token}"})

    def current(self, machines: Sequence[str]) -> Mapping[str, str]:
        """One ``GET /machines/work-orders`` per ``CHUNK`` machines (not one request per machine per poll)."""
        found: dict[str, str] = {}
        for start in range(0, len(machines), CHUNK):
            response = self._client.get("/machines/work-orders",
                                        params=[("machine", m) for m in machines[start:start + CHUNK]])
            response.raise_for_status()
            for answer in response.json():
                order = answer.get("work_order")
                if isinstance(order, str) and order:
                    found[answer["machine"]] = order
        return found

    def close(self) -> None:
        self._client.close()


def health_report(metrics: CollectorMetrics) -> dict[str, Any]:
    """The body of ``POST /collectors/health`` from a collector's own figures."""
    health = metrics.health()
    depth = int(health["spool"].get("depth", 0))
    error = health["forwarder"]["last_error"]
    return {"machines": [
        {"machine": name, "connected": bool(m["connected"]), "last_value_age_s": m["last_value_age_s"],
         "spool_depth": depth, "events_per_s": m["events_per_s"], "error": None if error is None else str(error)[:2000]}
        for name, m in health["machines"].items()
    ]}


async def report_health(base_url: str, token: str, metrics: CollectorMetrics, stop: asyncio.Event, *,
                        interval_s: float = 5.0,  # float-ok: seconds
                        transport: httpx.AsyncBaseTransport | None = None) -> None:
    """Post the collector's health every ``interval_s`` until ``stop``."""
    failing = False
    async with httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=10, transport=transport,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        while not stop.is_set():
            try:
                response = await client.post("/collectors/health", json=health_report(metrics))
                response.raise_for_status()
                if failing:
                    log.info("health reports accepted again")
                failing = False
            except Exception as exc:  # the service or the link is down: report again later
                if not failing:
                    log.warning("health report refused or undelivered (%s: %s)", type(exc).__name__, exc)
                failing = True
            await sleep_or_stop(stop, interval_s)
