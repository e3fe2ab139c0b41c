"""Modbus TCP machine simulator on pymodbus' own server (``ModbusTcpServer`` with ``SimDevice``s).

Driven by the same ``plc_configs`` files as the collectors: each Modbus machine is a unit (``device_id``)
on the server of its endpoint; its counters, job and energy sit at the configured registers, encoded by the
collector's own codec. The register values are written into the server's memory on every read request
(pymodbus' device ``action`` hook), so a reading always shows the machine's current state.

Test hooks: ``produce`` (exact parts), ``set_counter``, ``reset_counters`` (controller reboot), ``set_job``,
``pause`` / ``resume``, ``restart`` (server down and up on the same port), and ``produced`` — the exact
number of parts made per counter, the truth the tests compare the collectors with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from decimal import Decimal

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from mes_bridge.collectors.modbus import DEFAULT_PORT, encode_registers
from mes_bridge.plc_config import MachineConfig, TagSpec
from mes_common.errors import DomainError

log = logging.getLogger("mes_bridge.simulators.modbus")

_FUNCTION_TABLE = {3: "holding", 6: "holding", 16: "holding", 23: "holding", 4: "input"}


class SimulatedModbusMachine:
    """A machine's counters and meters; ``produced`` is the exact truth, registers may wrap or reset."""

    def __init__(self, config: MachineConfig) -> None:
        self.config = config
        sim = config.simulation
        self.counters: dict[str, int] = {name: sim.counter_start for name in config.counters}
        self.produced: dict[str, int] = dict.fromkeys(config.counters, 0)
        self.job: str | None = sim.job
        self.energy = Decimal(0)
        self.paused = False
        if config.job is not None:
            try:
                job_number(self.job, config.job)
            except ModbusSimulatorError as exc:
                raise ModbusSimulatorError(f"machine {config.machine}: simulation: {exc.message}") from None
        self._scrap_due = Decimal(0)
        self._rework_due = Decimal(0)

    @property
    def name(self) -> str:
        return self.config.machine

    def counter_for(self, outcome: str) -> str:
        """Which counter a part of ``outcome`` (good, scrap, rework) advances on this machine."""
        names = self.config.counters
        if self.config.kind == "vision":
            wanted = {"good": "pass", "scrap": "fail", "rework": "rework" if "rework" in names else "fail"}[outcome]
        else:
            wanted = outcome
        if wanted in names:
            return wanted
        return next(iter(names))

    def next_outcome(self) -> str:
        """Deterministic mix: scrap and rework come up exactly at their ratios, spread over the parts."""
        sim = self.config.simulation
        self._scrap_due += sim.scrap_ratio
        self._rework_due += sim.rework_ratio
        if self._scrap_due >= 1:
            self._scrap_due -= 1
            return "scrap"
        if self._rework_due >= 1:
            self._rework_due -= 1
            return "rework"
        return "good"

    def produce(self, outcome: str = "good", parts: int = 1) -> None:
        counter = self.counter_for(outcome)
        bits = self.config.counters[counter].counter_bits
        self.counters[counter] = (self.counters[counter] + parts) % (1 << bits)
        self.produced[counter] += parts
        self.energy += self.config.simulation.kwh_per_part * parts

    def produced_total(self) -> int:
        return sum(self.produced.values())

    def reset_counters(self) -> None:
        """A controller reboot: every counter back to 0 (the parts made stay made)."""
        self.counters = dict.fromkeys(self.counters, 0)

    def raw_of(self, name: str, tag: TagSpec) -> int:
        """The integer the register holds for a tag (inverse of the collector's scaling and job format)."""
        assert tag.reg is not None
        if name == "job":
            return job_number(self.job, tag)
        if name == "energy":
            return int(self.energy / tag.reg.scale)
        return self.counters[name]


class ModbusSimulatorError(DomainError):
    """A simulation the registers cannot show (names the machine and the value)."""


def job_number(job: str | None, tag: TagSpec) -> int:
    """The number a job register holds for ``job`` (``format`` stripped): "WO-17" with "WO-{value}" -> 17."""
    if job is None:
        return 0
    text = job
    if tag.format:
        prefix, _, suffix = tag.format.partition("{value}")
        text = text.removeprefix(prefix).removesuffix(suffix)
    if not text.isdigit():
        raise ModbusSimulatorError(f"job {job!r} cannot be shown in a numeric job register (format {tag.format!r})")
    return int(text)


class ModbusSimulator:
    """Every Modbus machine of ``configs``, one pymodbus server per endpoint, one unit per machine."""

    def __init__(self, configs: Sequence[MachineConfig]) -> None:
        modbus = [c for c in configs if c.protocol == "modbus"]
        self.machines: dict[str, SimulatedModbusMachine] = {c.machine: SimulatedModbusMachine(c) for c in modbus}
        self._endpoints: dict[tuple[str, int], list[SimulatedModbusMachine]] = {}
        for machine in self.machines.values():
            self._endpoints.setdefault(machine.config.host_port(DEFAULT_PORT), []).append(machine)
        self._servers: list[ModbusTcpServer] = []
        self._producers: list[asyncio.Task[None]] = []

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self, *, produce: bool = True) -> None:
        await self.start_servers()
        if produce:
            self.start_production()

    async def stop(self) -> None:
        await self.stop_production()
        await self.stop_servers()

    async def __aenter__(self) -> ModbusSimulator:
        await self.start(produce=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start_servers(self) -> None:
        for (host, port), machines in self._endpoints.items():
            devices = [self._device(m) for m in machines]
            server = ModbusTcpServer(devices if len(devices) > 1 else devices[0], address=(host, port))
            await server.serve_forever(background=True)
            self._servers.append(server)
            log.info("Modbus simulator on %s:%d: %s", host, port, ", ".join(m.name for m in machines))

    async def stop_servers(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            await server.shutdown()
        await asyncio.sleep(0)  # let the transports close their sockets

    async def restart(self, downtime_s: float = 0.0) -> None:  # float-ok: seconds
        """Server down (clients lose their link), production continues, server up again on the same port."""
        await self.stop_servers()
        await asyncio.sleep(downtime_s)
        await self.start_servers()

    def start_production(self) -> None:
        for machine in self.machines.values():
            rate = machine.config.simulation.parts_per_minute
            if rate > 0:
                self._producers.append(asyncio.create_task(self._produce_forever(machine, 60 / float(rate))))

    async def stop_production(self) -> None:
        tasks, self._producers = self._producers, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _produce_forever(self, machine: SimulatedModbusMachine, interval: float) -> None:  # float-ok
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if not machine.paused:
                machine.produce(machine.next_outcome())

    # --- test hooks -------------------------------------------------------------------------------

    def machine(self, name: str) -> SimulatedModbusMachine:
        return self.machines[name]

    def pause(self, name: str | None = None) -> None:
        for machine in self._select(name):
            machine.paused = True

    def resume(self, name: str | None = None) -> None:
        for machine in self._select(name):
            machine.paused = False

    def _select(self, name: str | None) -> list[SimulatedModbusMachine]:
        return list(self.machines.values()) if name is None else [self.machines[name]]

    def set_counter(self, name: str, counter: str, value: int) -> None:
        self.machines[name].counters[counter] = value

    def reset_counters(self, name: str) -> None:
        self.machines[name].reset_counters()

    def set_job(self, name: str, job: str | None) -> None:
        machine = self.machines[name]
        if machine.config.job is not None:
            job_number(job, machine.config.job)
        machine.job = job

    # --- pymodbus device --------------------------------------------------------------------------

    def _device(self, machine: SimulatedModbusMachine) -> SimDevice:
        top = {"holding": 16, "input": 16}
        for tag in machine.config.tags().values():
            assert tag.reg is not None
            if tag.reg.table in top:
                top[tag.reg.table] = max(top[tag.reg.table], tag.reg.address + tag.reg.width + 1)

        async def action(function_code: int, start_address: int, address: int, count: int,
                         registers: list[int], set_values: list[int] | list[bool] | None) -> ExcCodes | None:
            table = _FUNCTION_TABLE.get(function_code)
            if table is None or set_values is not None:
                return None
            for name, tag in machine.config.tags().items():
                spec = tag.reg
                assert spec is not None
                if spec.table != table:
                    continue
                words = encode_registers(spec, machine.raw_of(name, tag))
                offset = spec.address - start_address
                registers[offset: offset + len(words)] = words
            return None

        return SimDevice(
            id=machine.config.device_id,
            simdata=(
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                [SimData(0, count=top["holding"], values=0, datatype=DataType.REGISTERS)],
                [SimData(0, count=top["input"], values=0, datatype=DataType.REGISTERS)],
            ),
            action=action,
        )
