"""An in-process collector keeps the reports' checkpoints at its own period (``MES_BRIDGE_CHECKPOINT_EVERY`` /
``--checkpoint-every``, as ``mes-bridge serve``), and 0 means this process never builds them.

The collector runs with no machine; a spooled event (for an order that does not exist, so it is stored as
rejected) shows that its forwarder has run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from mes_bridge.bootstrap import Services
from mes_bridge.collectors.core import MachineState
from mes_bridge.collectors.runner import run_collector
from mes_bridge.forwarder import InProcessForwarder
from mes_bridge.spool import Spool
from mes_common.checkpoints import checkpoint_state
from mes_common.provenance import Provenance
from tests.waiting import wait_until
from wip_costing.events import OperationEvent
from wip_costing.tables import event_problems


def _builds(engine: Engine) -> list[datetime]:
    with engine.connect() as conn:
        return list(conn.scalars(select(checkpoint_state.c.built_at)))


def _problems(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(event_problems)) or 0)


async def _collect(engine: Engine, spool_path: Path, checkpoint_every: float | None,  # float-ok: seconds
                   until: str) -> None:
    spool = Spool(spool_path)
    event = OperationEvent(event_id="M-1:good:0:1", source_time=datetime(2026, 11, 22, 8, tzinfo=UTC),
                           provenance=Provenance.SENSOR, work_order="WO-NONE", operation=10, good=Decimal(1),
                           machine="M-1", work_center="WC-LASER")
    spool.commit("M-1", (event,), MachineState())
    stop = asyncio.Event()
    with Services(engine) as services:
        task = asyncio.create_task(run_collector([], spool, InProcessForwarder(services), stop,
                                                 checkpoint_every=checkpoint_every))
        try:
            await wait_until(lambda: _problems(engine) == 1, what="the spooled event stored as rejected")
            if until == "two builds":
                await wait_until(lambda: bool(_builds(engine)), what="a first checkpoint build")
                first = _builds(engine)
                await wait_until(lambda: _builds(engine) != first, what="a second checkpoint build")
        finally:
            stop.set()
            await task
            spool.close()


async def test_the_collector_builds_checkpoints_every_period_it_is_given(sqlite_engine: Engine,
                                                                        tmp_path: Path) -> None:
    await _collect(sqlite_engine, tmp_path / "spool.db", 0.1, "two builds")
    assert _builds(sqlite_engine)


async def test_a_collector_told_zero_never_builds_checkpoints(sqlite_engine: Engine, tmp_path: Path) -> None:
    await _collect(sqlite_engine, tmp_path / "spool.db", 0, "forwarded")
    assert _builds(sqlite_engine) == []
