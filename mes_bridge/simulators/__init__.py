"""Simulated machines for the demo, the tests and docker: Modbus (``modbus_sim``) and OPC UA (``opcua_sim``).

``run_simulators`` starts one server per endpoint of the given machine descriptions and produces parts at
their configured rates until ``stop`` is set. Each protocol's library is imported only when a machine
uses it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from mes_bridge.plc_config import MachineConfig

log = logging.getLogger("mes_bridge.simulators")


async def start_simulators(configs: Sequence[MachineConfig]) -> list[Any]:
    """Start simulators (producing) for every machine; returns them (each has ``async stop()``)."""
    started: list[Any] = []
    try:
        modbus = [c for c in configs if c.protocol == "modbus"]
        if modbus:
            from mes_bridge.simulators.modbus_sim import ModbusSimulator

            sim: Any = ModbusSimulator(modbus)
            await sim.start(produce=True)
            started.append(sim)
        by_endpoint: dict[str, list[MachineConfig]] = {}
        for config in configs:
            if config.protocol == "opcua":
                by_endpoint.setdefault(config.endpoint, []).append(config)
        if by_endpoint:
            from mes_bridge.simulators.opcua_sim import OpcUaSimulator

            for group in by_endpoint.values():
                sim = OpcUaSimulator(group)
                await sim.start(produce=True)
                started.append(sim)
    except BaseException:
        await stop_simulators(started)
        raise
    return started


async def stop_simulators(simulators: Sequence[Any]) -> None:
    for sim in reversed(simulators):
        try:
            await sim.stop()
        except Exception:  # stopping the others matters more than this one's error
            log.exception("simulator did not stop cleanly")


async def run_simulators(configs: Sequence[MachineConfig], stop: asyncio.Event) -> None:
    """Serve and produce for every machine in ``configs`` until ``stop`` is set."""
    simulators = await start_simulators(configs)
    log.info("simulating %s", ", ".join(f"{c.machine} ({c.protocol} {c.endpoint})" for c in configs))
    try:
        await stop.wait()
    finally:
        await stop_simulators(simulators)
