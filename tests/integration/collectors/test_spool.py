"""The SQLite spool: events and counter state stored together, bounded, alarmed, durable across reopen."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from mes_bridge.collectors.core import CounterPosition, MachineSession, MachineState, Snapshot
from mes_bridge.plc_config import parse_config
from mes_bridge.spool import Spool
from mes_common.provenance import Provenance
from wip_costing.events import OperationEvent

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def event(n: int, machine: str = "M-1") -> OperationEvent:
    return OperationEvent(event_id=f"{machine}:good:0:{n}", source_time=T0, provenance=Provenance.SENSOR,
                          work_order="WO-1", good=Decimal(1), machine=machine, work_center="WC-PRESS")


def state(total: int) -> MachineState:
    return MachineState(counters={"good": CounterPosition(0, total, total)}, job="WO-1")


def test_events_and_state_survive_reopen_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    assert spool.commit("M-1", (event(1), event(2)), state(2))
    assert spool.commit("M-2", (event(1, "M-2"),), state(1))
    assert spool.commit("M-1", (event(3),), state(3))
    spool.close()
    again = Spool(tmp_path / "s.db")
    assert again.depth == 4
    assert [e.event_id for _, e in again.pending(10)] == ["M-1:good:0:1", "M-1:good:0:2", "M-2:good:0:1",
                                                          "M-1:good:0:3"]
    assert again.load_state("M-1") == state(3)
    assert again.load_state("UNKNOWN") is None
    again.close()


def test_full_spool_stores_nothing_and_alarms_at_80_percent(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", capacity=5)
    assert spool.commit("M-1", tuple(event(n) for n in range(1, 4)), state(3))
    assert not spool.alarm
    assert spool.commit("M-1", (event(4),), state(4))
    assert spool.alarm and spool.fill == pytest.approx(0.8)
    assert not spool.commit("M-1", (event(5), event(6)), state(6))
    assert spool.depth == 4 and spool.load_state("M-1") == state(4)
    seqs = [seq for seq, _ in spool.pending(2)]
    assert spool.ack(seqs) == 2
    assert not spool.alarm
    assert spool.commit("M-1", (event(5), event(6)), state(6))
    assert [e.event_id for _, e in spool.pending(10)] == [f"M-1:good:0:{n}" for n in (3, 4, 5, 6)]
    spool.close()


def test_a_failing_commit_leaves_events_and_state_untouched(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db")
    assert spool.commit("M-1", (event(1),), state(1))

    class Broken:
        event_id = "M-1:good:0:3"

        def to_json(self) -> dict[str, object]:
            raise RuntimeError("disk said no")

    with pytest.raises(RuntimeError):
        spool.commit("M-1", (event(2), Broken()), state(3))  # type: ignore[arg-type]
    assert spool.depth == 1 and [e.event_id for _, e in spool.pending(10)] == ["M-1:good:0:1"]
    assert spool.load_state("M-1") == state(1)
    spool.close()


PRESS = """\
machine: M-1
work_center: WC-PRESS
protocol: modbus
endpoint: tcp://127.0.0.1:5020
operation: 20
counters:
  good: {register: {address: 0}}
work_order: WO-9
"""


async def test_session_on_a_full_spool_holds_counts_then_emits_them_all(tmp_path: Path) -> None:
    config = parse_config(PRESS, "p.yaml")
    spool = Spool(tmp_path / "s.db", capacity=1)
    session = MachineSession(config, spool)

    def read(value: int) -> Snapshot:
        return Snapshot("M-1", {"good": value}, T0, "poll")

    await session.on_snapshot(read(100))  # baseline
    await session.on_snapshot(read(103))
    await session.on_snapshot(read(107))  # spool full: held, the machine keeps counting
    assert [(e.event_id, e.good) for _, e in spool.pending(10)] == [("M-1:good:0:103", 3)]
    spool.ack([seq for seq, _ in spool.pending(10)])
    await session.on_snapshot(read(109))
    assert [(e.event_id, e.good, e.work_order) for _, e in spool.pending(10)] == [("M-1:good:0:109", 6, "WO-9")]
    spool.close()


def test_a_second_collector_on_the_same_spool_is_refused(tmp_path: Path) -> None:
    from mes_bridge.spool import SpoolBusy

    first = Spool(tmp_path / "s.db")
    with pytest.raises(SpoolBusy, match=r"s\.db is in use by collector pid \d+"):
        Spool(tmp_path / "s.db")
    first.close()
    Spool(tmp_path / "s.db").close()  # free again once the first is closed
