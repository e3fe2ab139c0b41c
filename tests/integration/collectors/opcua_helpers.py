"""Shared pieces of the OPC UA collector tests: machine configs on free ports, an in-memory event sink, waiting.

``MemoryStore`` is the tests' sink: a ``StateStore`` that keeps every event once per event id (as the central
service does) and the machine state, so what reached it can be compared with what the simulator produced.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from mes_bridge.collectors.core import MachineSession, MachineState, Snapshot, stored_now
from mes_bridge.collectors.opcua import Backoff, OpcUaClient
from mes_bridge.plc_config import MachineConfig, parse_config
from tests.waiting import wait_until as wait_for
from wip_costing.events import OperationEvent

FAST_BACKOFF = Backoff(initial=0.1, maximum=0.5)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def machine_config(
    folder: Path,
    machine: str,
    port: int,
    *,
    bits: int = 32,
    counters: Iterable[str] = ("good", "scrap"),
    parts_per_minute: int = 600,
    scrap_ratio: str = "0.25",
    counter_start: int = 0,
    publishing_interval_ms: int = 100,
    security: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> MachineConfig:
    """A CNC on ``opc.tcp://127.0.0.1:{port}``, written to ``folder/{machine}.yaml`` and loaded like a shipped one."""
    body: dict[str, Any] = {
        "machine": machine,
        "work_center": "WC-LASER",
        "kind": "cnc",
        "protocol": "opcua",
        "endpoint": f"opc.tcp://127.0.0.1:{port}/mes-bridge",
        "operation": 10,
        "publishing_interval_ms": publishing_interval_ms,
        "counters": {name: {"node": f"ns=2;s={machine}.Parts{name.title()}", "bits": bits} for name in counters},
        "job": {"node": f"ns=2;s={machine}.ProductionJob"},
        "energy": {"node": f"ns=2;s={machine}.EnergyKwh"},
        "simulation": {
            "parts_per_minute": parts_per_minute,
            "scrap_ratio": scrap_ratio,
            "kwh_per_part": "0.25",
            "job": "WO-1",
            "counter_start": counter_start,
        },
    }
    if security is not None:
        body["security"] = security
    body.update(extra or {})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{machine}.yaml"
    text = yaml.safe_dump(body, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return parse_config(text, path)


class MemoryStore:
    """In-memory ``StateStore``: events de-duplicated by id (first one kept), states per machine."""

    def __init__(self) -> None:
        self.events: dict[str, OperationEvent] = {}
        self.states: dict[str, MachineState] = {}
        self.commits = 0

    def load_state(self, machine: str) -> MachineState | None:
        return self.states.get(machine)

    def submit(self, machine: str, events: tuple[OperationEvent, ...], state: MachineState) -> Future[bool]:
        for event in events:
            self.events.setdefault(event.event_id, event)
        self.states[machine] = state
        self.commits += 1
        return stored_now(True)


class WatchedSession(MachineSession):
    """A ``MachineSession`` that also keeps the snapshots and records it saw, for assertions."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.snapshots: list[Snapshot] = []
        self.arrived: list[float] = []  # monotonic arrival time of each snapshot
        self.records: list[tuple[str, str]] = []

    async def on_snapshot(self, snapshot: Snapshot) -> None:
        self.snapshots.append(snapshot)
        self.arrived.append(time.monotonic())
        await super().on_snapshot(snapshot)

    def record(self, kind: str, detail: str, *, logged: bool = True) -> None:
        self.records.append((kind, detail))
        super().record(kind, detail, logged=logged)

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.records]


def collected(events: Iterable[OperationEvent], config: MachineConfig) -> dict[str, int]:
    """Parts per counter name that reached the sink (vision pass/fail mapped back from good/scrap)."""
    fields = {config.event_field(name): name for name in config.counters}
    totals = {name: 0 for name in config.counters}
    for event in events:
        if event.machine != config.machine:
            continue
        for field, name in fields.items():
            totals[name] += int(getattr(event, field))
    return totals


def by_work_order(events: Iterable[OperationEvent]) -> dict[str | None, Decimal]:
    out: dict[str | None, Decimal] = {}
    for event in events:
        out[event.work_order] = out.get(event.work_order, Decimal(0)) + event.processed
    return out


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    await wait_for(condition, timeout_s=timeout, what=what, interval_s=0.05)


class RunningCollector:
    """An ``OpcUaClient`` running against a ``WatchedSession`` on a ``MemoryStore`` (as the runner would run it)."""

    def __init__(self, config: MachineConfig, store: MemoryStore | None = None, **client_options: Any) -> None:
        self.config = config
        self.store = store or MemoryStore()
        self.session = WatchedSession(config, self.store)
        client_options.setdefault("backoff", FAST_BACKOFF)
        client_options.setdefault("watchdog_interval", 0.5)
        self.client = OpcUaClient(config, **client_options)
        self.stop_event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RunningCollector:
        self.task = asyncio.create_task(self.client.run(self.session, self.stop_event))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop_event.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)

    async def baseline(self, timeout: float = 10.0) -> None:
        """Wait for the first full read (the counters' baseline)."""
        await wait_until(lambda: self.session.state is not None, timeout, f"{self.config.machine} baseline")

    def totals(self) -> dict[str, int]:
        return collected(self.store.events.values(), self.config)
