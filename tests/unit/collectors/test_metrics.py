"""Health figures and Prometheus exposition of a collector."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from mes_bridge.collectors.core import MachineState
from mes_bridge.metrics import CollectorMetrics
from mes_bridge.spool import Spool
from wip_costing.events import EventOutcome, Status


def test_health_and_prometheus_show_the_same_figures(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", capacity=10)
    spool.commit("PRESS-1", (), MachineState())
    metrics = CollectorMetrics(spool)
    metrics.add_machine("PRESS-1")
    metrics.connected("PRESS-1", True)
    metrics.value_read("PRESS-1", datetime(2026, 11, 22, tzinfo=UTC))
    metrics.events_spooled("PRESS-1", 6)
    metrics.recorded("PRESS-1", "counter-reset", "good dropped 50 -> 2")
    metrics.forwarded([EventOutcome("a", Status.APPLIED), EventOutcome("b", Status.DUPLICATE)])
    metrics.forward_failed("ConnectionError: down")
    health = metrics.health()
    press = health["machines"]["PRESS-1"]
    assert press["connected"] is True and press["events_total"] == 6
    assert press["events_per_s"] == 0.1  # 6 events over the 60 s window
    assert 0 <= press["last_value_age_s"] < 5
    assert press["records"][0]["kind"] == "counter-reset"
    assert health["spool"] == {"depth": 0, "capacity": 10, "fill": 0.0, "alarm": False, "oldest_age_s": 0.0}
    assert health["forwarder"]["outcomes"] == {"applied": 1, "duplicate": 1}
    text = metrics.render().decode()
    assert 'mes_collector_connected{machine="PRESS-1"} 1.0' in text
    assert 'mes_collector_events_spooled_total{machine="PRESS-1"} 6.0' in text
    assert 'mes_collector_records_total{kind="counter-reset",machine="PRESS-1"} 1.0' in text
    assert "mes_collector_spool_capacity 10.0" in text
    assert 'mes_collector_forwarded_total{status="duplicate"} 1.0' in text
    spool.close()
