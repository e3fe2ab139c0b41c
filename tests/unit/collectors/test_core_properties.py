"""Properties of counter tracking: readings of a counter that counts, wraps and resets add up to the truth."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from mes_bridge.collectors.core import MachineState, Snapshot, advance
from mes_bridge.plc_config import parse_config

CONFIG = parse_config(
    "machine: M\nwork_center: W\nprotocol: modbus\nendpoint: tcp://127.0.0.1:5020\nwork_order: WO-1\n"
    "counters:\n  good: {register: {address: 0, type: uint16}}\n", "m.yaml")
T0 = datetime(2026, 11, 22, tzinfo=UTC)

# Between two readings the machine makes 0..300 parts; sometimes the controller resets first.
steps = st.lists(st.tuples(st.integers(0, 300), st.booleans()), min_size=1, max_size=60)


def readings(start: int, plan: list[tuple[int, bool]]) -> tuple[list[int], int]:
    value, made, out = start, 0, []
    for parts, reset in plan:
        # A reset is only recognisable when the counter was well away from the wrap and parts made since
        # are fewer than it had shown; the property is about what can be known from values alone.
        if reset and 1000 <= value < 60000:
            value = 0
            parts = min(parts, 500)
        value = (value + parts) % 65536
        made += parts
        out.append(value)
    return out, made


def run(values: list[int], state: MachineState) -> tuple[list[tuple[str, Decimal]], MachineState]:
    events = []
    for value in values:
        result = advance(CONFIG, state, Snapshot("M", {"good": value}, T0, "poll"))
        events += [(e.event_id, e.good) for e in result.events]
        state = result.state
    return events, state


@settings(max_examples=200, deadline=None)
@given(start=st.integers(0, 65535), plan=steps)
def test_counted_parts_equal_parts_made_and_ids_are_unique(start: int, plan: list[tuple[int, bool]]) -> None:
    values, made = readings(start, plan)
    events, _ = run([start, *values], MachineState())
    assert sum(q for _, q in events) == made
    assert len({i for i, _ in events}) == len(events)


@settings(max_examples=100, deadline=None)
@given(start=st.integers(0, 65535), plan=steps, cut=st.integers(0, 60))
def test_a_restart_from_the_persisted_state_gives_the_same_events(start: int, plan: list[tuple[int, bool]],
                                                                  cut: int) -> None:
    values = [start, *readings(start, plan)[0]]
    whole, _ = run(values, MachineState())
    cut = min(cut, len(values))
    first, state = run(values[:cut], MachineState())
    restored = MachineState.from_json(state.to_json())
    # the reading before the cut is read again after the restart: nothing new, nothing twice
    second, _ = run(values[max(cut - 1, 0):], restored)
    assert first + second == whole
