"""A collector stand-in for the spool's SIGKILL test: many machine sessions reading fast into one spool.

``python -m tests.integration.collectors.spool_child SPOOL MACHINES`` runs until killed. Every machine's counter
goes up by one per reading, all machines at once (so their readings share group commits); after a reading's
commit, when the session's position has moved, the line ``MACHINE VALUE`` is printed and flushed: that value
was acknowledged. A restarted child continues each machine's counter from the position in the spool. The machines
and their reading loop are ``benchmarks/spool.py``'s (``benchmarks._common``).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from benchmarks._common import press_sessions, read_counter
from mes_bridge.spool import Spool

START = 1000  # every machine's counter value at the first reading (the baseline: no parts yet)


def _print_acknowledged(machine: str, value: int, _wait_s: float) -> None:
    print(f"{machine} {value}", flush=True)


async def main(spool_path: Path, machines: int) -> None:
    sessions = press_sessions(Spool(spool_path), machines)
    print("ready", flush=True)
    await asyncio.gather(*(read_counter(s, START, acknowledged=_print_acknowledged) for s in sessions))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
