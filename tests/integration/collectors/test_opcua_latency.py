"""A lone counter change reaches the spool on its own: nothing in the OPC UA path waits for the next change.

An end-to-end run once showed every count of two machines at exactly 60 parts/min visible ~1.1 s after its change,
"as if each value were delivered only with the next one" (the production interval equal to the 1 s keepalive
probe). The cause was the benchmark (production started before the collector's first reading, see
``benchmarks/end_to_end.py``); this test pins down the product's side against a real asyncua server: two machines
sharing one connection (one subscription, one keepalive probe at the default 1 s), a single part made on one of
them and no further change on either, and that part's event committed to a real fsync'd spool. A notification
held back until the next one (a coalescing window, a keepalive read replacing a data change, a stale timestamp)
would leave the event out forever, whatever the timeout.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mes_bridge.collectors.core import MachineSession
from mes_bridge.collectors.opcua import OpcUaClient
from mes_bridge.simulators.opcua_sim import OpcUaSimulator
from mes_bridge.spool import Spool
from tests.integration.collectors.opcua_helpers import FAST_BACKOFF, free_port, machine_config, wait_until

pytestmark = pytest.mark.integration


def _committed(spool: Spool, session: MachineSession, event_id: str) -> bool:
    """The event is in the spool and the session's position moved past it (it moves only after the commit)."""
    state = session.state
    return (state is not None and state.counters["good"].raw >= 1
            and any(event.event_id == event_id for _, event in spool.pending(100)))


@pytest.mark.asyncio
async def test_a_single_change_is_committed_without_a_further_change(tmp_path: Path) -> None:
    port = free_port()
    configs = [machine_config(tmp_path, name, port, counters=("good",), parts_per_minute=60, scrap_ratio="0",
                              publishing_interval_ms=50) for name in ("CNC-P", "CNC-Q")]
    sim = OpcUaSimulator(configs)
    spool = Spool(tmp_path / "spool.db")
    sessions = [MachineSession(config, spool) for config in configs]
    client = OpcUaClient(*configs, backoff=FAST_BACKOFF)  # the machine file's 1 s keepalive probe
    stop = asyncio.Event()
    await sim.start(produce=False)
    task = asyncio.create_task(client.run_many(sessions, stop))
    try:
        await wait_until(lambda: all(s.state is not None for s in sessions), 10, "both machines' baselines")
        await sim.produce("CNC-P")  # one part, and nothing after it on either machine
        await wait_until(lambda: _committed(spool, sessions[0], "CNC-P:good:0:1"), 2,
                         "CNC-P's one part committed to the spool with no further change following")
        assert sessions[1].state is not None and sessions[1].state.counters["good"].raw == 0
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await sim.stop()
        spool.close()
