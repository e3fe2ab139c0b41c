"""Forwarding: HTTP request shape and acknowledgement rules; in-process into a real database."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Header, HTTPException, Request
from sqlalchemy.engine import Engine

from mes_bridge.bootstrap import Services
from mes_bridge.collectors.runner import Collector
from mes_bridge.forwarder import HttpForwarder, InProcessForwarder, RecordingSink, forward_once
from mes_bridge.metrics import CollectorMetrics
from mes_bridge.plc_config import load_configs
from mes_bridge.simulators.modbus_sim import ModbusSimulator
from mes_bridge.spool import Spool
from mes_common.provenance import Provenance
from wip_costing.events import OperationEvent, parse_event

from .conftest import free_port, modbus_yaml, wait_until

T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def event(n: int) -> OperationEvent:
    return OperationEvent(event_id=f"M-1:good:0:{n}", source_time=T0, provenance=Provenance.SENSOR,
                          work_order="WO-1", operation=20, good=Decimal(1), kwh=Decimal("0.25"), machine="M-1",
                          work_center="WC-PRESS")


def spooled(tmp_path: Path, count: int) -> Spool:
    spool = Spool(tmp_path / "s.db")
    from mes_bridge.collectors.core import MachineState

    spool.commit("M-1", tuple(event(n) for n in range(1, count + 1)), MachineState())
    return spool


class DepthAtCount:
    """An observer noting the spool's depth when a batch's outcomes are counted."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool
        self.depths: list[int] = []

    def forwarded(self, outcomes: object) -> None:
        self.depths.append(self.spool.depth)

    def forward_failed(self, error: str) -> None:
        raise AssertionError(error)


async def test_outcomes_are_counted_before_the_batch_is_acknowledged(tmp_path: Path) -> None:
    """Whoever sees the spool empty must also see every answer that emptied it counted (health, tests, demo)."""
    spool = spooled(tmp_path, 3)
    sink = RecordingSink()
    observer = DepthAtCount(spool)
    assert await forward_once(spool, sink, batch_size=10, observer=observer) == 3
    assert observer.depths == [3] and spool.depth == 0
    spool.close()
    sink.close()


async def test_http_batches_carry_the_token_and_events_and_ack_on_outcomes(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def service(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        return httpx.Response(200, json=[{"event_id": e["event_id"], "status": "applied", "reason": None}
                                         for e in body])

    spool = spooled(tmp_path, 3)
    forwarder = HttpForwarder("http://central:8000/", "tok-123", transport=httpx.MockTransport(service))
    metrics = CollectorMetrics(spool)
    assert await forward_once(spool, forwarder, batch_size=2, observer=metrics) == 2
    assert await forward_once(spool, forwarder, batch_size=2, observer=metrics) == 1
    await forwarder.aclose()
    assert spool.depth == 0 and metrics.outcomes == {"applied": 3}
    first = seen[0]
    assert str(first.url) == "http://central:8000/events"
    assert first.headers["authorization"] == "Bearer tok-123"
    assert [e["event_id"] for e in json.loads(first.content)] == ["M-1:good:0:1", "M-1:good:0:2"]
    assert json.loads(first.content)[0]["kwh"] == "0.25"
    spool.close()


async def test_a_failed_request_or_a_missing_outcome_keeps_the_events(tmp_path: Path) -> None:
    answers = iter([
        httpx.Response(503, text="database down"),
        httpx.Response(200, json=[{"event_id": "M-1:good:0:2", "status": "applied", "reason": None}]),
        httpx.Response(200, json=[{"event_id": "M-1:good:0:1", "status": "rejected", "reason": "no such order"}]),
    ])
    forwarder = HttpForwarder("http://central", "t", transport=httpx.MockTransport(lambda _r: next(answers)))
    spool = spooled(tmp_path, 2)
    with pytest.raises(httpx.HTTPStatusError):
        await forward_once(spool, forwarder)
    assert spool.depth == 2
    assert await forward_once(spool, forwarder) == 0  # event 2 may not overtake unanswered event 1
    assert await forward_once(spool, forwarder) == 1  # the rejected one is acknowledged (stored centrally)
    assert [e.event_id for _, e in spool.pending(10)] == ["M-1:good:0:2"]
    await forwarder.aclose()
    spool.close()


def _pool(engine: Engine, op: int) -> tuple[str, str]:
    from wip_costing import reports

    with engine.connect() as conn:
        view = reports.order_view(conn, "WO-1")
    assert view is not None
    row = next(o for o in view["operations"] if o["operation"] == op)
    return row["waiting"], row["first_pass"]["value"]


async def test_machine_counts_reach_the_database_in_process(engine: Engine, example_plant: Path,
                                                            machine_dir: Path, tmp_path: Path) -> None:
    from tests.integration.wip_costing.plant import load_plant
    from wip_costing.service import release_order

    load_plant(engine, example_plant)
    release_order(engine, "WO-1", "FG-BRACKET", Decimal(10), on=date(2026, 11, 22))
    port = free_port()
    (machine_dir / "laser.yaml").write_text(modbus_yaml("LASER-1", port, operation=10, work_center="WC-LASER"))
    configs = load_configs(machine_dir)
    sim = ModbusSimulator(configs)
    spool = Spool(tmp_path / "spool.db")
    collector = Collector(configs, spool, InProcessForwarder(Services(engine)),
                          client_options={"modbus": {"backoff_base_s": 0.05, "backoff_cap_s": 0.2}})
    await sim.start(produce=False)
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    try:
        await wait_until(lambda: collector.sessions["LASER-1"].state is not None, what="baseline")
        for _ in range(6):
            sim.machine("LASER-1").produce("good")
            await asyncio.sleep(0.03)
        await wait_until(lambda: _pool(engine, 20)[0] == "6", what="6 units waiting at op 20")
        await wait_until(lambda: spool.depth == 0, what="the spool to drain")
    finally:
        stop.set()
        await task
        await sim.stop()
        spool.close()
    # per unit: steel 4.00 + labor 2 min at 30/h 1.00 + machine 2 min at 60/h 2.00 + 0.25 kWh at 0.20 0.05
    assert _pool(engine, 20) == ("6", "42.30")
    assert set(collector.metrics.outcomes) == {"applied"}


def events_service(sink: RecordingSink) -> FastAPI:
    """A stand-in central service: ``POST /events`` with a bearer token, outcomes from a recording sink."""
    service = FastAPI()

    @service.post("/events")
    async def post_events(request: Request, authorization: str = Header()) -> list[dict[str, object]]:
        if authorization != "Bearer edge-token":
            raise HTTPException(401, "bad token")
        events = [parse_event(raw) for raw in await request.json()]
        return [o.to_json() for o in sink.store(events)]

    return service


async def test_http_forwarding_waits_out_a_network_outage(machine_dir: Path, tmp_path: Path) -> None:
    """Real sockets: the service is down while the machine produces, then comes up; nothing is lost."""
    sink = RecordingSink()
    service = events_service(sink)
    api_port, modbus_port = free_port(), free_port()
    (machine_dir / "m.yaml").write_text(modbus_yaml("PRESS-H", modbus_port))
    configs = load_configs(machine_dir)
    sim = ModbusSimulator(configs)
    spool = Spool(tmp_path / "spool.db")
    forwarder = HttpForwarder(f"http://127.0.0.1:{api_port}", "edge-token", timeout=2.0)
    collector = Collector(configs, spool, forwarder, client_options={"modbus": {"backoff_base_s": 0.05}})
    server = uvicorn.Server(uvicorn.Config(service, host="127.0.0.1", port=api_port, log_level="warning"))
    await sim.start(produce=False)
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    serving: asyncio.Task[None] | None = None
    try:
        await wait_until(lambda: collector.sessions["PRESS-H"].state is not None, what="baseline")
        for _ in range(12):
            sim.machine("PRESS-H").produce("good")
            await asyncio.sleep(0.02)
        await wait_until(lambda: collector.metrics.forward_errors >= 1 and spool.depth > 0, what="failed forwards")
        serving = asyncio.create_task(server.serve())
        await wait_until(lambda: sum(e.good for e in sink.events()) == 12, timeout_s=45, what="12 parts over HTTP")
        await wait_until(lambda: spool.depth == 0, what="the spool to drain")
        # The spool empties when the last batch is acknowledged, a moment before its outcomes are counted.
        await wait_until(lambda: collector.metrics.outcomes.get("applied", 0) == len(sink.events()),
                         what=f"{len(sink.events())} applied outcomes counted ({collector.metrics.outcomes})")
    finally:
        stop.set()
        await task
        await forwarder.aclose()
        server.should_exit = True
        if serving is not None:
            await serving
        await sim.stop()
        spool.close()
        sink.close()
