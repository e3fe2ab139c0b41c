"""``api.metrics`` without a server: apps in one process keep their own registries; dead workers' live gauges are
dropped; tokens are hidden in access-log lines."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from api.access_log import HideTokens, hide_tokens
from api.metrics import ApiMetrics, mark_dead_workers


def test_two_apps_in_one_process_count_apart() -> None:
    first, second = ApiMetrics(lambda: []), ApiMetrics(lambda: [])
    first.events.labels("applied").inc(3)
    assert b'mes_api_events_total{status="applied"} 3.0' in first.render()
    assert b'mes_api_events_total{status="applied"}' not in second.render()


def test_dead_workers_live_gauges_are_dropped(tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead = int(gone.stdout)
    for pid in (dead, 1):
        (tmp_path / f"gauge_livesum_{pid}.db").write_bytes(b"")
    (tmp_path / f"counter_{dead}.db").write_bytes(b"")
    assert mark_dead_workers(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"counter_{dead}.db", "gauge_livesum_1.db"]


def test_token_hidden_in_access_log_lines() -> None:
    assert hide_tokens("/dashboard/stream?token=mesb_abc-DEF_1") == "/dashboard/stream?token=***"
    assert hide_tokens("/x?a=1&TOKEN=s3cret&b=2") == "/x?a=1&TOKEN=***&b=2"
    assert hide_tokens("/wip?as_of=2026-11-23&by=operation") == "/wip?as_of=2026-11-23&by=operation"
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/dashboard/stream?token=mesb_x", "1.1", 200), None)
    assert HideTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "GET /dashboard/stream?token=*** HTTP/1.1" 200'
