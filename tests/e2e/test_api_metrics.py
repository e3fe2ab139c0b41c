"""``/metrics`` of ``mes-bridge serve --workers 2`` on PostgreSQL shows the whole server, whichever worker answers:
events sent over both workers add up to what was sent, and so do the request counts (prometheus_client's
multiprocess mode over a per-server directory that ``serve`` empties at start)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.engine import Engine

from mes_bridge import demo
from mes_bridge.bootstrap import Services
from tests.e2e.api_server import ApiServer
from wip_costing.service import release_order

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

EVENTS = 40


def _event(n: int) -> dict[str, Any]:
    return {"event_id": f"metrics:{n}", "work_order": "WO-M1", "operation": 10, "good": 1, "kwh": "0.5",
            "machine": "LASER-1", "work_center": "WC-LASER", "provenance": "sensor",
            "source_time": f"2026-11-23T08:{n // 60:02d}:{n % 60:02d}Z"}


def sample(text: str, name: str, **labels: str) -> float:  # float-ok: a Prometheus sample
    """The value of the sample ``name{labels}`` in an exposition (0 when absent)."""
    total = 0.0  # float-ok: a Prometheus sample
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if match is None or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


def applied_per_worker(directory: Path) -> dict[int, float]:  # float-ok: Prometheus samples
    """Events applied, per worker process, read from each worker's own counter file."""
    per_pid = {}
    for path in directory.glob("counter_*.db"):
        merged = MultiProcessCollector.merge([str(path)], accumulate=True)
        per_pid[int(path.stem.split("_")[1])] = sum(
            s.value for m in merged for s in m.samples
            if s.name == "mes_api_events_total" and s.labels == {"status": "applied"})
    return per_pid


def test_metrics_of_two_workers_add_up(pg_engine: Engine, tmp_path: Path) -> None:
    demo.load_plant(Services(pg_engine), lambda _line: None)
    release_order(pg_engine, "WO-M1", "FG-BRACKET", Decimal(100), on=demo.RELEASE_DATE)
    db_url = pg_engine.url.render_as_string(hide_password=False)
    shared = tmp_path / "metrics"
    shared.mkdir()
    (shared / "counter_1.db").write_bytes(b"\x07" * 64)  # an earlier run's leftover, unreadable: serve empties it
    server = ApiServer(db_url, workers=2, env={"PROMETHEUS_MULTIPROC_DIR": str(shared)}).start()
    try:
        token = server.token("collector", machines=("LASER-1",))

        def post(n: int) -> int:  # a new connection each time: either worker may take it
            with server.client(token) as http:
                answer = http.post("/events", json=[_event(n)])
            assert answer.status_code == 200 and answer.json()[0]["status"] == "applied", answer.text
            return 1

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert sum(pool.map(post, range(EVENTS))) == EVENTS

        per_worker = applied_per_worker(shared)
        assert sum(per_worker.values()) == EVENTS
        assert len([n for n in per_worker.values() if n > 0]) == 2, f"one worker took every event: {per_worker}"
        for _ in range(8):  # asked again and again, on new connections: answered by either worker, the same totals
            text = httpx.get(f"{server.url}/metrics", timeout=30).text
            assert sample(text, "mes_api_events_total", status="applied") == EVENTS
            assert sample(text, "mes_api_request_seconds_count", method="POST", route="/events",
                          status="200") == EVENTS
            assert sample(text, "mes_api_requests_in_progress") == 1  # this scrape, on whichever worker
            assert text.count("# TYPE mes_api_events_total counter") == 1  # merged, not one family per worker
    finally:
        server.stop()
    assert not list(shared.glob("gauge_live*.db")), "a worker that shut down still counts as live"
