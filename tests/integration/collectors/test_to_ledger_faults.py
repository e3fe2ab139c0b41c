"""From a simulated machine's counters to the ledger, for each protocol, through the remaining faults.

The same laser, order and plant as ``test_to_ledger.py`` (whose machine, line and ledger readers are reused),
forwarding with the real ``InProcessForwarder`` into real PostgreSQL:

- a 16-bit counter rolling over while the machine runs, then a controller counter reset (a reboot: the machine
  is stopped first, as parts made between the collector's last reading and a reset are in no counter value and
  cannot be counted by anyone);
- the same events forwarded twice: answers lost after the service committed (so the spool sends them again),
  then every event the collector forwarded applied once more with ``apply_events``;
- the collector process (``mes-bridge collect``, database from ``MES_BRIDGE_DATABASE_URL``) killed with
  SIGKILL mid-run and restarted on the same spool while the machine keeps producing.

Each ends with the order's operation 10 holding exactly the good and scrapped parts the machine made, exactly
that much steel issued, no rejected or conflicting event, and only applied/duplicate outcomes.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from ledger import queries as ledger_queries
from mes_bridge.forwarder import Forwarder
from tests.integration.collectors.conftest import free_port, wait_until
from tests.integration.collectors.test_to_ledger import (
    MACHINE,
    ORDER,
    ORDER_QTY,
    Line,
    Machine,
    line,
    operation_10,
    prepare_plant,
    steel_issued,
)
from wip_costing import reports
from wip_costing.events import EventOutcome, OperationEvent
from wip_costing.service import apply_events
from wip_costing.tables import operation_events

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

PROTOCOLS = ["modbus", "opcua"]
ROOT = Path(__file__).resolve().parents[3]
START_16 = 65_530  # 16-bit counters a few parts short of wrapping


def ledger_total(engine: Engine) -> Decimal:
    good, scrap = operation_10(engine)
    return good + scrap


def assert_ledger_matches(engine: Engine, produced: dict[str, int]) -> None:
    """Operation 10 holds exactly the parts made, steel left stores for each, and nothing went wrong."""
    total = sum(produced.values())
    assert operation_10(engine) == (Decimal(produced["good"]), Decimal(produced["scrap"]))
    assert produced["good"] > 0 and produced["scrap"] > 0 and total < ORDER_QTY
    assert steel_issued(engine) == total * Decimal(1)  # qty per bracket: 1 blank, no scrap allowance
    with engine.connect() as conn:
        assert reports.list_problems(conn) == []


async def settle(ln: Line) -> dict[str, int]:
    """Production stopped: wait until every part made is in the ledger and the spool is empty."""
    produced = ln.machine.produced()
    total = sum(produced.values())
    await wait_until(lambda: ln.in_ledger() == total, timeout_s=20,
                     what=f"{total} parts in the ledger (has {ln.in_ledger()})")
    await wait_until(lambda: ln.spool.depth == 0, what="the spool to drain")
    return produced


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_16_bit_rollover_and_a_controller_reset_reach_the_ledger_exactly(
        protocol: str, pg_engine: Engine, example_plant: Path, tmp_path: Path) -> None:
    prepare_plant(pg_engine, example_plant)
    async with line(protocol, pg_engine, tmp_path, bits=16, counter_start=START_16, scrap_ratio="0.25") as ln:
        machine, session = ln.machine, ln.collector.sessions[MACHINE]
        machine.sim.start_production()
        # Both counters (good and scrap) wrap past 65535 while the machine runs.
        await wait_until(lambda: all(v < START_16 for v in machine.counters().values()), timeout_s=20,
                         what=f"both counters rolled over (at {machine.counters()})")
        await asyncio.sleep(0.5)
        machine.sim.pause(MACHINE)
        before_reset = await settle(ln)

        await machine.reset_counters()  # the controller reboots: its counters drop to 0
        await wait_until(lambda: session.state is not None
                         and all(p.epoch == 1 for p in session.state.counters.values()),
                         what="the collector to see both counters drop")
        machine.sim.resume(MACHINE)
        await wait_until(lambda: ln.in_ledger() >= sum(before_reset.values()) + 8, timeout_s=15,
                         what="parts made after the reset in the ledger")
        await machine.sim.stop_production()
        produced = await settle(ln)
        records = ln.collector.metrics.health()["machines"][MACHINE]["records"]
        outcomes = dict(ln.collector.metrics.outcomes)
        counters_now = machine.counters()

    assert_ledger_matches(pg_engine, produced)
    assert all(v < START_16 for v in counters_now.values())  # counted from 0 again after the reset
    assert set(outcomes) <= {"applied", "duplicate"} and outcomes["applied"] > 0
    kinds = [r["kind"] for r in records]
    rolled = sorted(r["detail"].split()[0] for r in records if r["kind"] == "counter-rollover")
    reset = sorted(r["detail"].split()[0] for r in records if r["kind"] == "counter-reset")
    assert rolled == ["good", "scrap"], kinds
    assert reset == ["good", "scrap"], kinds
    assert kinds.index("counter-reset") > kinds.index("counter-rollover")
    with pg_engine.connect() as conn:
        ids = conn.execute(select(operation_events.c.event_id)).scalars().all()
    for counter in ("good", "scrap"):  # events of both epochs reached the service
        assert any(i.startswith(f"{MACHINE}:{counter}:0:") for i in ids)
        assert any(i.startswith(f"{MACHINE}:{counter}:1:") for i in ids)


class LosesAnswers:
    """Forwards for real and remembers every event sent; the first ``lose`` answers are lost after the
    service committed (a link dropping at the worst moment), so those events are sent again."""

    def __init__(self, inner: Forwarder, lose: int) -> None:
        self.inner = inner
        self.lose = lose
        self.sent: list[OperationEvent] = []

    async def forward(self, events: Sequence[OperationEvent]) -> Sequence[EventOutcome]:
        outcomes = await self.inner.forward(events)
        self.sent.extend(events)
        if self.lose > 0:
            self.lose -= 1
            raise ConnectionError("answer lost after the service committed")
        return outcomes


def ledger_state(engine: Engine) -> tuple[object, ...]:
    """Everything the events touched: operation 10, steel, every stock move of the order, events recorded."""
    with engine.connect() as conn:
        moves = [(m.kind, m.item, m.qty, m.value) for m in ledger_queries.list_moves(conn, reference=ORDER)]
        recorded = conn.execute(select(func.count()).select_from(operation_events)).scalar_one()
        view = reports.order_view(conn, ORDER)
    return operation_10(engine), steel_issued(engine), moves, recorded, view


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_the_same_events_forwarded_twice_count_once_in_the_ledger(
        protocol: str, pg_engine: Engine, example_plant: Path, tmp_path: Path) -> None:
    prepare_plant(pg_engine, example_plant)
    forwarders: list[LosesAnswers] = []

    def losing(inner: Forwarder) -> Forwarder:
        forwarders.append(LosesAnswers(inner, lose=3))
        return forwarders[0]

    async with line(protocol, pg_engine, tmp_path, wrap=losing) as ln:
        ln.machine.sim.start_production()
        await wait_until(lambda: ln.in_ledger() >= 5, timeout_s=30, what="first parts in the ledger")
        # Go on producing until the lost answers have been sent again and some later events got through.
        await wait_until(lambda: forwarders[0].lose == 0 and ln.in_ledger() >= 15, timeout_s=60,
                         what=f"3 answers lost and 15 parts in the ledger (has {ln.in_ledger()})")
        await ln.machine.sim.stop_production()
        produced = await settle(ln)
        # The spool empties when the last batch is acknowledged, a moment before its outcomes are counted.
        metrics = ln.collector.metrics
        await wait_until(lambda: metrics.outcomes.get("duplicate", 0) > 0, timeout_s=10,
                         what=f"the lost answers' events to come back as duplicates (outcomes {metrics.outcomes})")
        outcomes = dict(metrics.outcomes)
        errors = metrics.forward_errors

    sent = forwarders[0].sent
    assert_ledger_matches(pg_engine, produced)
    assert errors >= 3 and outcomes["duplicate"] > 0  # the lost answers' events came back as duplicates
    assert set(outcomes) <= {"applied", "duplicate"}
    distinct: dict[str, OperationEvent] = {}
    for event in sent:
        assert distinct.setdefault(event.event_id, event).fingerprint() == event.fingerprint()  # same id, same content
    assert len(sent) > len(distinct)

    before = ledger_state(pg_engine)
    again = apply_events(pg_engine, list(distinct.values()))  # every event the collector forwarded, once more
    assert [o.event_id for o in again] == list(distinct)
    assert {o.status.value for o in again} == {"duplicate"}
    assert ledger_state(pg_engine) == before
    assert_ledger_matches(pg_engine, produced)
    with pg_engine.connect() as conn:
        assert reports.list_problems(conn) == []


def start_collector(folder: Path, spool: Path, database_url: str, metrics_port: int,
                    log: Path) -> subprocess.Popen[bytes]:
    """``mes-bridge collect`` in its own process, forwarding in-process into the database of the settings."""
    command = [sys.executable, "-m", "mes_bridge.cli", "collect", "--config", str(folder), "--spool", str(spool),
               "--metrics-port", str(metrics_port)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MES_BRIDGE_DATABASE_URL": database_url}
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)


def scrape(port: int) -> dict[str, float]:
    """The collector's Prometheus samples (``name{labels}`` to value); empty while it is not serving."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=1).text
    except httpx.HTTPError:
        return {}
    samples: dict[str, float] = {}
    for row in text.splitlines():
        match = re.fullmatch(r"(\S+) (\S+)", row)
        if match and not row.startswith("#"):
            samples[match[1]] = float(match[2])
    return samples


def outcomes_of(samples: dict[str, float]) -> dict[str, int]:
    """Events the service answered, by outcome, as the collector counted them."""
    found: dict[str, int] = {}
    for key, value in samples.items():
        match = re.fullmatch(r'mes_collector_forwarded_total\{status="(\w+)"\}', key)
        if match and value > 0:
            found[match[1]] = int(value)
    return found


async def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait, 10)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_the_collector_killed_with_sigkill_and_restarted_loses_and_doubles_nothing(
        protocol: str, pg_engine: Engine, example_plant: Path, tmp_path: Path) -> None:
    prepare_plant(pg_engine, example_plant)
    folder = tmp_path / "plc"
    folder.mkdir()
    machine = Machine(protocol, folder)
    spool, log = tmp_path / "spool.db", tmp_path / "collector.log"
    database_url = pg_engine.url.render_as_string(hide_password=False)
    await machine.sim.start(produce=False)
    first_port, second_port = free_port(), free_port()
    proc = start_collector(folder, spool, database_url, first_port, log)
    outcomes: list[dict[str, int]] = []
    try:
        baseline = f'mes_collector_records_total{{kind="counter-baseline",machine="{MACHINE}"}}'
        await wait_until(lambda: scrape(first_port).get(baseline, 0) >= 2, timeout_s=30,
                         what=f"the collector's baseline reading ({log.read_text() if log.exists() else ''})")
        machine.sim.start_production()
        await wait_until(lambda: ledger_total(pg_engine) >= 10, timeout_s=30, what="first parts in the ledger")
        await wait_until(lambda: outcomes_of(scrape(first_port)).get("applied", 0) > 0, timeout_s=30,
                         what="the first collector counting applied outcomes")
        outcomes.append(outcomes_of(scrape(first_port)))
        proc.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(proc.wait, 10) == -signal.SIGKILL
        killed_at = sum(machine.produced().values())
        # The machine keeps producing while no collector runs: wait for parts made in that gap (however slow
        # this host is today) rather than sleeping and hoping some were made.
        await wait_until(lambda: sum(machine.produced().values()) >= killed_at + 5, timeout_s=30,
                         what=f"5 parts made while no collector runs (made {machine.produced()})")
        made_while_down = sum(machine.produced().values())

        proc = start_collector(folder, spool, database_url, second_port, log)
        await wait_until(lambda: ledger_total(pg_engine) >= made_while_down + 10, timeout_s=60,
                         what="10 parts made after the restart in the ledger")
        await machine.sim.stop_production()
        produced = machine.produced()
        total = sum(produced.values())
        await wait_until(lambda: ledger_total(pg_engine) == total, timeout_s=20,
                         what=f"{total} parts in the ledger (has {ledger_total(pg_engine)})")
        await wait_until(lambda: scrape(second_port).get("mes_collector_spool_depth") == 0,
                         what="the restarted collector's spool to drain")
        samples = scrape(second_port)
        outcomes.append(outcomes_of(samples))
    finally:
        await stop_process(proc)
        await machine.sim.stop()
    assert proc.returncode == 0, log.read_text()
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert leftover == [], f"tasks leaked: {leftover}"

    assert_ledger_matches(pg_engine, produced)
    assert killed_at < made_while_down and total >= made_while_down + 10  # parts made before, during, after
    assert all(set(o) <= {"applied", "duplicate"} for o in outcomes), outcomes
    assert outcomes[0].get("applied", 0) > 0 and outcomes[1].get("applied", 0) > 0, outcomes
    assert samples.get(f'mes_collector_connected{{machine="{MACHINE}"}}') == 1.0
    assert f'mes_collector_records_total{{kind="counter-baseline",machine="{MACHINE}"}}' not in samples  # resumed
