"""Counter tracking: deltas, rollover, resets and epochs, deterministic ids, job changes, kWh split."""

from __future__ import annotations

from concurrent.futures import Future
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from mes_bridge.collectors.core import MachineSession, MachineState, Snapshot, advance, split_kwh, stored_now
from mes_bridge.plc_config import MachineConfig, parse_config
from wip_costing.events import OperationEvent

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)

PRESS = """\
machine: PRESS-1
work_center: WC-PRESS
protocol: modbus
endpoint: tcp://127.0.0.1:5020
operation: 20
counters:
  good:  {register: {address: 0, type: uint16}}
  scrap: {register: {address: 1, type: uint32}}
job: {register: {address: 4}, format: "WO-{value}"}
energy: {register: {table: input, address: 10, type: uint32, scale: "0.01"}}
"""


@pytest.fixture
def press() -> MachineConfig:
    return parse_config(PRESS, "press.yaml")


def snap(**values: object) -> Snapshot:
    return Snapshot("PRESS-1", values, T0, "poll")  # type: ignore[arg-type]


def run(config: MachineConfig, *readings: dict[str, object]) -> tuple[list[OperationEvent], MachineState, list[str]]:
    state = MachineState()
    events: list[OperationEvent] = []
    kinds: list[str] = []
    for values in readings:
        result = advance(config, state, snap(**values))
        events += result.events
        kinds += [r.kind for r in result.records]
        state = result.state
    return events, state, kinds


def test_first_reading_is_a_baseline_then_deltas(press: MachineConfig) -> None:
    events, state, kinds = run(press, {"good": 100, "scrap": 5, "job": 1}, {"good": 103, "scrap": 5, "job": 1},
                               {"good": 110, "scrap": 7, "job": 1})
    assert [(e.event_id, e.good, e.scrap) for e in events] == [
        ("PRESS-1:good:0:103", 3, 0), ("PRESS-1:good:0:110", 7, 0), ("PRESS-1:scrap:0:7", 0, 2)]
    assert all(e.work_order == "WO-1" and e.operation == 20 and e.work_center == "WC-PRESS" for e in events)
    assert kinds.count("counter-baseline") == 2
    assert state.counters["good"].total == 110


def test_same_reading_again_emits_nothing(press: MachineConfig) -> None:
    events, _, _ = run(press, {"good": 1, "job": 1}, {"good": 4, "job": 1}, {"good": 4, "job": 1})
    assert [e.event_id for e in events] == ["PRESS-1:good:0:4"]


def test_16_bit_rollover_counts_across_the_wrap_and_ids_stay_unique(press: MachineConfig) -> None:
    events, state, kinds = run(press, {"good": 65530, "job": 1}, {"good": 3, "job": 1}, {"good": 10, "job": 1})
    assert [(e.event_id, e.good) for e in events] == [("PRESS-1:good:0:65539", 9), ("PRESS-1:good:0:65546", 7)]
    assert "counter-rollover" in kinds
    assert state.counters["good"].epoch == 0


def test_drop_far_from_the_top_is_a_reset_not_a_rollover(press: MachineConfig) -> None:
    events, _state, kinds = run(press, {"good": 30000, "job": 1}, {"good": 3, "job": 1})
    assert [(e.event_id, e.good) for e in events] == [("PRESS-1:good:1:3", 3)]
    assert "counter-reset" in kinds and "counter-rollover" not in kinds


def test_controller_reset_starts_a_new_epoch_counting_from_zero(press: MachineConfig) -> None:
    events, state, kinds = run(press, {"good": 500, "job": 1}, {"good": 520, "job": 1}, {"good": 7, "job": 1},
                               {"good": 9, "job": 1})
    assert [(e.event_id, e.good) for e in events] == [
        ("PRESS-1:good:0:520", 20), ("PRESS-1:good:1:7", 7), ("PRESS-1:good:1:9", 2)]
    assert "counter-reset" in kinds
    assert state.counters["good"].epoch == 1


def test_reset_to_zero_moves_epoch_without_an_event(press: MachineConfig) -> None:
    events, _state, _kinds = run(press, {"good": 50, "job": 1}, {"good": 0, "job": 1}, {"good": 2, "job": 1})
    assert [e.event_id for e in events] == ["PRESS-1:good:1:2"]


def test_32_bit_counter_rolls_over_at_32_bits(press: MachineConfig) -> None:
    top = (1 << 32) - 2
    events, _, kinds = run(press, {"scrap": top, "job": 1}, {"scrap": 3, "job": 1})
    assert [(e.event_id, e.scrap) for e in events] == [(f"PRESS-1:scrap:0:{top + 5}", 5)]
    assert "counter-rollover" in kinds


def test_counts_up_to_a_job_change_belong_to_the_previous_job(press: MachineConfig) -> None:
    events, state, kinds = run(press, {"good": 0, "job": 1}, {"good": 5, "job": 2}, {"good": 8, "job": 2})
    assert [(e.work_order, e.good) for e in events] == [("WO-1", 5), ("WO-2", 3)]
    assert state.job == "WO-2" and "job-change" in kinds


def test_without_work_order_counts_are_held_not_lost(press: MachineConfig) -> None:
    events, _state, kinds = run(press, {"good": 0, "job": 0}, {"good": 5, "job": 0}, {"good": 6, "job": 3},
                               {"good": 6, "job": 3})
    assert "no-work-order" in kinds
    assert [(e.work_order, e.good, e.event_id) for e in events] == [("WO-3", 6, "PRESS-1:good:0:6")]


def test_energy_delta_goes_to_the_parts_of_the_reading_split_by_quantity(press: MachineConfig) -> None:
    k = Decimal
    events, state, _ = run(
        press,
        {"good": 0, "scrap": 0, "job": 1, "energy": k("100.00")},
        {"good": 0, "scrap": 0, "job": 1, "energy": k("101.00")},  # no parts: kWh waits
        {"good": 2, "scrap": 1, "job": 1, "energy": k("102.00")},
    )
    assert [e.kwh for e in events] == [k("1.333333"), k("0.666667")]
    assert sum(e.kwh or 0 for e in events) == k("2.00")
    assert state.kwh_pending == 0


def test_energy_meter_reset_keeps_the_kwh_used_before_it(press: MachineConfig) -> None:
    k = Decimal
    events, _, kinds = run(
        press,
        {"good": 0, "job": 1, "energy": k("10")},
        {"good": 0, "job": 1, "energy": k("12")},
        {"good": 0, "job": 1, "energy": k("1")},
        {"good": 4, "job": 1, "energy": k("1.5")},
    )
    assert [e.kwh for e in events] == [k("3.5")]
    assert "energy-reset" in kinds


def test_vision_pass_and_fail_map_to_good_and_scrap_at_the_inspected_operation() -> None:
    vision = parse_config(
        PRESS.replace("good:", "pass:").replace("scrap:", "fail:").replace("operation: 20\n", "")
        .replace("protocol:", "kind: vision\ninspection: {operation: 30, fail_as: rework}\nprotocol:"), "v.yaml")
    events, _, _ = run(vision, {"pass": 0, "fail": 0, "job": 7}, {"pass": 4, "fail": 1, "job": 7})
    assert [(e.event_id, e.good, e.rework, e.operation) for e in events] == [
        ("PRESS-1:pass:0:4", 4, 0, 30), ("PRESS-1:fail:0:1", 0, 1, 30)]


def test_split_kwh_never_loses_a_digit() -> None:
    shares = split_kwh(Decimal("1"), [Decimal(1), Decimal(1), Decimal(1)])
    assert shares == [Decimal("0.333333"), Decimal("0.333333"), Decimal("0.333334")]


def test_state_round_trips_through_json(press: MachineConfig) -> None:
    _, state, _ = run(press, {"good": 65530, "job": 1, "energy": Decimal("3.25")}, {"good": 2, "job": 1})
    assert MachineState.from_json(state.to_json()) == state


class FakeStore:
    def __init__(self, room: int) -> None:
        self.room = room
        self.events: list[OperationEvent] = []
        self.states: dict[str, MachineState] = {}

    def load_state(self, machine: str) -> MachineState | None:
        return self.states.get(machine)

    def submit(self, machine: str, events: tuple[OperationEvent, ...], state: MachineState) -> Future[bool]:
        if len(events) > self.room:
            return stored_now(False)
        self.room -= len(events)
        self.events += events
        self.states[machine] = state
        return stored_now(True)


async def test_session_holds_counts_while_the_spool_is_full_and_resumes(press: MachineConfig) -> None:
    store = FakeStore(room=0)
    session = MachineSession(press, store)
    await session.on_snapshot(snap(good=10, job=1))
    await session.on_snapshot(snap(good=15, job=1))
    assert store.events == [] and store.states["PRESS-1"].counters["good"].raw == 10
    store.room = 10
    await session.on_snapshot(snap(good=18, job=1))
    assert [(e.event_id, e.good) for e in store.events] == [("PRESS-1:good:0:18", 8)]
    # a new session (restart) continues from the stored position
    again = MachineSession(press, store)
    await again.on_snapshot(snap(good=18, job=1))
    assert len(store.events) == 1


def test_a_scanned_work_order_is_used_when_the_machine_has_no_job_tag(press: MachineConfig) -> None:
    no_job = press.model_copy(update={"job": None})
    first = advance(no_job, MachineState(), snap(good=0), scanned_work_order="WO-8")
    second = advance(no_job, first.state, snap(good=3), scanned_work_order="WO-8")
    assert [(e.work_order, e.good) for e in second.events] == [("WO-8", 3)]
    held = advance(no_job, first.state, snap(good=3))
    assert held.events == () and [r.kind for r in held.records] == ["no-work-order"]
