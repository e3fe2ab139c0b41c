"""The collectors' spool: readings committed per second, group commit beside one fsync per reading, same run.

Both runs store the same kind of reading (one event plus the machine's counter state, as ``MachineSession``
hands them over) into a fresh fsync'd SQLite spool on the same disk:
- plain: one reading at a time, each waiting for its own commit (one transaction, one fsync per reading) —
  what the spool did before group commit, and what any single machine sees when it is alone;
- group: ``--machines`` machine sessions (``MachineSession.on_snapshot``, the production path) reading as fast
  as their commits allow, so readings arriving while a commit is on disk share the next transaction.

Figures: readings committed per second, transactions (fsyncs), readings per transaction, and per reading the
time from the reading to its commit (p50 / p99), and the CPU of the process in cores (when it is well under 1
the host's other load, not the spool, bounds the group figure). Run: ``python benchmarks/spool.py`` (about 20 s).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import press_sessions, read_counter  # noqa: E402
from mes_bridge.collectors.core import CounterPosition, MachineState  # noqa: E402
from mes_bridge.spool import Spool  # noqa: E402
from mes_common.provenance import Provenance  # noqa: E402
from wip_costing.events import OperationEvent  # noqa: E402


def plain(folder: Path, seconds: float) -> dict[str, float]:
    """One reading at a time: each commit waits for its own fsync."""
    spool = Spool(folder / "plain.db")
    now = datetime.now(UTC)
    cpu = time.process_time()
    started = time.perf_counter()
    n = 0
    waits: list[float] = []
    while time.perf_counter() - started < seconds:
        n += 1
        event = OperationEvent(event_id=f"M-000:good:0:{n}", source_time=now, provenance=Provenance.SENSOR,
                               work_order="WO-1", good=Decimal(1), machine="M-000", work_center="WC-PRESS",
                               operation=20)
        state = MachineState(counters={"good": CounterPosition(0, n, n)}, job="WO-1")
        t0 = time.perf_counter()
        assert spool.commit("M-000", (event,), state)
        waits.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    groups = spool.groups
    spool.close()
    return {"readings": n, "seconds": elapsed, "groups": groups, "cpu": cpu, **_quantiles(waits)}


async def group(folder: Path, seconds: float, machines: int) -> dict[str, float]:
    """``machines`` sessions reading as fast as their commits return, into one spool."""
    spool = Spool(folder / "group.db")
    sessions = press_sessions(spool, machines)
    waits: list[float] = []
    stop_at = time.perf_counter() + seconds

    def acknowledged(_machine: str, _value: int, wait_s: float) -> None:
        waits.append(wait_s)

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(read_counter(s, 0, until=stop_at, acknowledged=acknowledged) for s in sessions))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    groups = spool.groups
    depth = spool.depth
    spool.close()
    assert depth == len(waits), f"{depth} events spooled for {len(waits)} readings"
    return {"readings": len(waits), "seconds": elapsed, "groups": groups, "cpu": cpu, **_quantiles(waits)}


def _quantiles(waits: list[float]) -> dict[str, float]:
    ordered = sorted(waits)
    return {"p50_ms": 1000 * statistics.median(ordered), "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))]}


def _line(name: str, r: dict[str, float]) -> str:
    rate = r["readings"] / r["seconds"]
    per_group = r["readings"] / max(1, r["groups"])
    return (f"{name:<28} {rate:>9,.0f} readings/s  {r['groups']:>7,.0f} fsyncs  {per_group:>7.1f} readings/fsync  "
            f"reading->commit p50 {r['p50_ms']:.1f} ms  p99 {r['p99_ms']:.1f} ms  "
            f"CPU {r['cpu'] / r['seconds']:.2f} cores")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=8.0, help="length of each run")
    p.add_argument("--machines", type=int, default=1000, help="machine sessions in the group run")
    p.add_argument("--dir", type=Path, help="folder for the spool files (default: a temporary one on /tmp)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        folder = Path(tmp)
        base = plain(folder, args.seconds)
        grouped = asyncio.run(group(folder, args.seconds, args.machines))
    print(f"spool on {args.dir or tempfile.gettempdir()}, {args.seconds:.0f} s per run")
    print(_line("plain (one fsync/reading)", base))
    print(_line(f"group commit ({args.machines} machines)", grouped))
    ratio = (grouped["readings"] / grouped["seconds"]) / (base["readings"] / base["seconds"])
    print(f"group / plain: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
