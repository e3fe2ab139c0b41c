"""A collector stand-in for the spool's SIGKILL test: many machine sessions reading fast into one spool.

``python -m tests.integration.collectors.spool_child SPOOL MACHINES`` runs until killed. Every machine's counter
goes up by one per reading, all machines at once (so their readings share group commits); after a reading's
commit, when the session's position has moved, the line ``MACHINE VALUE`` is printed and flushed: that value
was acknowledged. A restarted child continues each machine's counter from the position in the spool.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

from mes_bridge.collectors.core import MachineSession, Snapshot
from mes_bridge.plc_config import parse_config
from mes_bridge.spool import Spool

PRESS = """\
machine: {machine}
work_center: WC-PRESS
protocol: modbus
endpoint: tcp://127.0.0.1:5020
operation: 20
counters:
  good: {{register: {{address: 0, type: uint32}}}}
work_order: WO-1
"""
START = 1000  # every machine's counter value at the first reading (the baseline: no parts yet)


async def read_forever(session: MachineSession) -> None:
    state = await asyncio.to_thread(session.store.load_state, session.machine)
    last = state.counters["good"].raw if state is not None else None  # the position already on disk
    value = START if last is None else last + 1
    while True:
        await session.on_snapshot(Snapshot(session.machine, {"good": value}, datetime.now(UTC), "poll"))
        assert session.state is not None
        if session.state.counters["good"].raw == value:
            if last is not None:  # the first reading is the baseline: no parts, nothing to acknowledge
                print(f"{session.machine} {value}", flush=True)
            last = value
            value += 1
        await asyncio.sleep(0)


async def main(spool_path: Path, machines: int) -> None:
    spool = Spool(spool_path)
    sessions = [MachineSession(parse_config(PRESS.format(machine=f"M-{n:03d}"), "m.yaml"), spool)
                for n in range(machines)]
    print("ready", flush=True)
    await asyncio.gather(*(read_forever(s) for s in sessions))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
