"""The spool's group commit under SIGKILL: every acknowledged reading is on disk after a restart, none twice.

A child process (``spool_child``) runs 50 machine sessions reading as fast as they can into one spool, so their
readings share transactions; it prints each reading once its session's position moved (after the commit). The
child is killed with SIGKILL mid-stream, twice, and restarted from the spool in between.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mes_bridge.collectors.core import MachineState
from mes_bridge.spool import Spool
from tests.integration.collectors.spool_child import START

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
MACHINES = 50


def _run_and_kill(spool: Path, acked: dict[str, int], readings: int) -> None:
    """Start the child, let it acknowledge ``readings`` readings after ``ready``, SIGKILL it, keep what it printed."""
    child = subprocess.Popen([sys.executable, "-m", "tests.integration.collectors.spool_child", str(spool),
                              str(MACHINES)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    seen = 0
    deadline = time.monotonic() + 120
    try:
        assert child.stdout.readline().strip() == "ready"
        for line in child.stdout:
            machine, value = line.split()
            assert int(value) > acked.get(machine, START), f"{machine} {value} acknowledged twice"
            acked[machine] = int(value)
            seen += 1
            if seen >= readings:
                break
            assert time.monotonic() < deadline, f"only {seen} of {readings} readings acknowledged in 120 s"
        os.kill(child.pid, signal.SIGKILL)
        for line in child.stdout:  # acknowledged before the kill, still in the pipe
            machine, value = line.split()
            acked[machine] = max(acked.get(machine, START), int(value))
    finally:
        child.kill()
        child.wait(10)
    assert child.returncode == -signal.SIGKILL


def _on_disk(spool: Path) -> tuple[dict[str, int], dict[str, list[str]], dict[str, int]]:
    """Per machine: the persisted counter position, the spooled event ids in order, the parts they carry."""
    with sqlite3.connect(spool) as db:
        states = {m: MachineState.from_json(json.loads(body)).counters["good"].raw
                  for m, body in db.execute("SELECT machine, body FROM machine_state")}
        ids: dict[str, list[str]] = {}
        parts: dict[str, int] = {}
        for machine, event_id, body in db.execute("SELECT machine, event_id, body FROM spooled_events ORDER BY seq"):
            ids.setdefault(machine, []).append(event_id)
            parts[machine] = parts.get(machine, 0) + int(json.loads(body)["good"])
    return states, ids, parts


def test_every_acknowledged_reading_survives_sigkill_and_none_is_stored_twice(tmp_path: Path) -> None:
    spool = tmp_path / "spool.db"
    acked: dict[str, int] = {}
    for run, readings in enumerate((3000, 2000), start=1):
        _run_and_kill(spool, acked, readings)
        positions, ids, parts = _on_disk(spool)
        assert len(positions) == MACHINES, f"run {run}: a machine has no position"
        for machine, position in positions.items():
            # acknowledged => on disk (the position may be ahead: committed, killed before it was printed)
            assert position >= acked.get(machine, START), f"run {run}: {machine} lost an acknowledged reading"
            # events and position in one transaction: exactly one event per counted part, none twice
            expected = [f"{machine}:good:0:{value}" for value in range(START + 1, position + 1)]
            assert ids.get(machine, []) == expected, f"run {run}: {machine} events do not match its position"
            assert parts.get(machine, 0) == position - START
    assert sum(acked.values()) - START * MACHINES >= 5000


def _readings(machines: int, per_machine: int) -> list[tuple[str, tuple[Any, ...], MachineState]]:
    from tests.integration.collectors.test_spool import event, state

    return [(f"M-{m}", (event(n, f"M-{m}"),), state(n)) for n in range(1, per_machine + 1) for m in range(machines)]


def _rows(spool: Spool) -> tuple[list[tuple[str, str]], dict[str, MachineState | None]]:
    events = [(e.machine or "", e.event_id) for _, e in spool.pending(10_000)]
    return events, {m: spool.load_state(m) for m in sorted({m for m, _ in events})}


def test_group_commit_stores_exactly_what_one_commit_per_reading_stores(tmp_path: Path) -> None:
    """The plain reference (one blocking commit per reading) and concurrent submits (grouped) give the same spool."""
    readings = _readings(machines=20, per_machine=30)
    plain = Spool(tmp_path / "plain.db")
    for machine, events, state in readings:
        assert plain.commit(machine, events, state)
    grouped = Spool(tmp_path / "grouped.db")
    futures = [grouped.submit(machine, events, state) for machine, events, state in readings]
    assert all(f.result(timeout=30) for f in futures)
    assert grouped.groups < len(readings)  # they did share transactions
    assert _rows(grouped) == _rows(plain)
    assert grouped.depth == plain.depth == len(readings)
    plain.close()
    grouped.close()


def test_a_reading_that_cannot_be_stored_fails_alone_in_its_group(tmp_path: Path) -> None:
    from tests.integration.collectors.test_spool import event, state

    class Broken:
        event_id = "M-1:good:0:3"

        def to_json(self) -> dict[str, object]:
            raise RuntimeError("disk said no")

    spool = Spool(tmp_path / "s.db", capacity=3)
    futures = [spool.submit("M-1", (event(1),), state(1)),
               spool.submit("M-2", (Broken(),), state(3)),  # type: ignore[arg-type]
               spool.submit("M-3", (event(1, "M-3"), event(2, "M-3")), state(2)),
               spool.submit("M-4", (event(1, "M-4"), event(2, "M-4")), state(2))]  # over capacity
    assert futures[0].result(10) is True and futures[2].result(10) is True and futures[3].result(10) is False
    with pytest.raises(RuntimeError, match="disk said no"):
        futures[1].result(10)
    assert spool.load_state("M-2") is None and spool.load_state("M-4") is None
    assert spool.depth == 3
    spool.close()
