"""Helpers for the collector integration tests: free ports, Modbus machine files, waiting on a condition."""

from __future__ import annotations

import socket
from decimal import Decimal
from pathlib import Path

import pytest

from tests.waiting import wait_until
from wip_costing.events import OperationEvent

__all__ = ["free_port", "modbus_yaml", "parts", "wait_until"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def modbus_yaml(machine: str, port: int, *, bits: int = 32, rate: int = 600, scrap_ratio: str = "0",
                energy: bool = True, job: str | None = "WO-1", poll_ms: int = 50, operation: int = 20,
                work_center: str = "WC-PRESS") -> str:
    kind = "uint32" if bits == 32 else "uint16"
    width = 2 if bits == 32 else 1
    lines = [
        f"machine: {machine}",
        f"work_center: {work_center}",
        "kind: press",
        "protocol: modbus",
        f"endpoint: tcp://127.0.0.1:{port}",
        "device_id: 1",
        f"operation: {operation}",
        f"poll_interval_ms: {poll_ms}",
        "counters:",
        f"  good:  {{register: {{table: holding, address: 0, type: {kind}, word_order: little}}}}",
        f"  scrap: {{register: {{table: holding, address: {width}, type: {kind}, byte_order: little}}}}",
        f'job: {{register: {{table: holding, address: {2 * width}, type: uint16}}, format: "WO-{{value}}"}}',
    ]
    if energy:
        lines.append('energy: {register: {table: input, address: 10, type: uint32, scale: "0.01"}}')
    sim = f'simulation: {{parts_per_minute: {rate}, scrap_ratio: "{scrap_ratio}", kwh_per_part: "0.25"'
    lines.append(sim + (f', job: "{job}"}}' if job else "}"))
    return "\n".join(lines) + "\n"


@pytest.fixture
def machine_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "plc"
    folder.mkdir()
    return folder


def parts(events: list[OperationEvent]) -> Decimal:
    """Units the distinct events account for."""
    return sum((e.processed for e in events), Decimal(0))
