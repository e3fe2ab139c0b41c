"""``benchmarks/end_to_end.py`` measures from a counter change to the first poll showing that change's part.

The collector counts from the first value it reads (its baseline). A run once started production before the
collector had read the machines: the first part went into the baseline, and the benchmark, matching raw counter
values to parts, pinned every change on the part after it -- ~1.1 s at 60 parts/min, as if the product delivered
each value only with the next one.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from benchmarks.end_to_end import collector_baselines, latencies, logged_at, matched, stages
from mes_bridge.collectors.core import MachineSession, Snapshot
from mes_bridge.plc_config import parse_config
from mes_bridge.spool import Spool
from mes_common.settings import LOG_FORMAT

PRESS = """\
machine: M-1
work_center: WC-PRESS
protocol: modbus
endpoint: tcp://127.0.0.1:5020
operation: 20
counters:
  good: {register: {address: 0, type: uint32}}
work_order: WO-1
"""


def test_changes_are_matched_to_parts_counted_from_the_collectors_baseline() -> None:
    # Two parts were made before the collector's first reading (baseline 2): counter values 3, 4, 5 are the
    # order's parts 1, 2, 3, each visible 100 ms after its change.
    t = 1_000.0
    changes = [("M-1", "good", 3, t), ("M-1", "good", 4, t + 1), ("M-1", "good", 5, t + 2)]
    unit = Decimal("1.25")
    seen = [(t - 0.5, {"WO-1": Decimal(0)})] + [(t + k + 0.1, {"WO-1": unit * (k + 1)}) for k in range(3)]
    values, missing = latencies(changes, {"M-1": "WO-1"}, seen, (t - 1, t + 3), {"M-1": 2})
    assert [round(v) for v in values] == [100, 100, 100]
    assert missing == 0


def test_a_change_into_the_baseline_is_no_latency() -> None:
    t = 1_000.0
    seen = [(t + 0.1, {"WO-1": Decimal(0)})]
    values, missing = latencies([("M-1", "good", 2, t)], {"M-1": "WO-1"}, seen, (t - 1, t + 1), {"M-1": 2})
    assert (values, missing) == ([], 0)


def test_each_change_is_split_into_its_stages_by_its_event() -> None:
    t = 1_000.0
    changes = [("M-1", "good", 1, t), ("M-1", "good", 2, t + 1), ("M-1", "good", 3, t + 1.01)]
    seen = [(t - 0.5, {"WO-1": Decimal(0)}), (t + 0.3, {"WO-1": Decimal(1)}), (t + 1.3, {"WO-1": Decimal(3)})]
    found, missing = matched(changes, {"M-1": "WO-1"}, seen, (t - 1, t + 2), {"M-1": 0})
    # value 2 was read together with 3 (one event, M-1:good:0:3): it has no event of its own
    events = {"M-1:good:0:1": (t + 0.05, t + 0.15), "M-1:good:0:3": (t + 1.06, t + 1.16)}
    split = stages(found, events)
    assert missing == 0
    assert [round(v) for v in split["read"]] == [50, 50]
    assert [round(v) for v in split["recorded"]] == [100, 100]
    assert [round(v) for v in split["visible"]] == [140, 150]


def test_collector_baselines_are_the_first_readings_stored_in_the_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db")
    session = MachineSession(parse_config(PRESS, "m.yaml"), spool)
    asyncio.run(session.on_snapshot(Snapshot("M-1", {"good": 7}, datetime.now(UTC), "connect")))
    try:
        assert collector_baselines(tmp_path / "spool.db", ["M-1"], timeout_s=5) == {"M-1": 7}
        with pytest.raises(SystemExit, match=r"did not read 1 machines.*M-2"):
            collector_baselines(tmp_path / "spool.db", ["M-1", "M-2"], timeout_s=0)
    finally:
        spool.close()


def test_a_collector_log_line_is_dated_when_it_was_written() -> None:
    """Warnings are counted only until the simulators stop (each lost connection is logged after that)."""
    record = logging.LogRecord("mes_bridge.collectors.opcua", logging.WARNING, __file__, 1, "connection lost", None,
                               None)
    line = logging.Formatter(LOG_FORMAT).format(record)
    assert abs(logged_at(line) - record.created) < 0.001
