"""Modbus TCP collector (pymodbus 3.16): polls a machine's registers and delivers full snapshots.

Also owns the register codec (16/32-bit, signed or not, word and byte order, exact decimal scale) that the
Modbus simulator uses to write what this client reads.

Invariants:
- After every connect and reconnect the first snapshot (reason "connect") holds every tag read afresh, so
  the session emits whatever happened while the link was down.
- Every poll reads every tag, neighbouring registers in one request (``plan_reads``): a job change
  shows up in the same snapshot as the counters at that moment (reason "job-change").
- An unreadable register (exception response) gives None for that tag, never a guessed value; a lost
  link ends the connection, and the client reconnects with capped, jittered exponential backoff.
- Devices of one endpoint share one TCP connection (the unit id selects the device), each with its own poll loop;
  one endpoint's dead device never blocks another endpoint: each connection runs in its own task with its own
  timeouts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException, ModbusIOException

from mes_bridge.collectors.core import MachineSession, Snapshot, Value
from mes_bridge.forwarder import backoff_delay, sleep_or_stop
from mes_bridge.plc_config import MachineConfig, RegisterSpec, TagSpec
from mes_common.errors import DomainError

log = logging.getLogger("mes_bridge.collectors.modbus")

DEFAULT_PORT = 502


class RegisterValueError(DomainError):
    """A value that does not fit its register (simulator side): names the register and the value."""


def _swap_bytes(word: int) -> int:
    return ((word & 0xFF) << 8) | (word >> 8)


def decode_registers(spec: RegisterSpec, words: list[int]) -> int:
    """Raw integer of a register value (before scaling) from the 16-bit words read."""
    if spec.table in ("coil", "discrete"):
        return int(bool(words[0]))
    words = list(words[: spec.width])
    if spec.byte_order == "little":
        words = [_swap_bytes(w) for w in words]
    if spec.word_order == "little":
        words.reverse()
    raw = 0
    for word in words:
        raw = (raw << 16) | (word & 0xFFFF)
    if spec.type.startswith("int") and raw >= 1 << (spec.bits - 1):
        raw -= 1 << spec.bits
    return raw


def encode_registers(spec: RegisterSpec, raw: int) -> list[int]:
    """The 16-bit words holding ``raw`` (inverse of ``decode_registers``)."""
    bits = spec.bits
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if spec.type.startswith("int") else (0, (1 << bits) - 1)
    if not low <= raw <= high:
        raise RegisterValueError(f"value {raw} does not fit {spec.type} register {spec.table} {spec.address}")
    raw &= (1 << bits) - 1
    words = [(raw >> shift) & 0xFFFF for shift in range(bits - 16, -1, -16)]
    if spec.word_order == "little":
        words.reverse()
    if spec.byte_order == "little":
        words = [_swap_bytes(w) for w in words]
    return words


def scaled(spec: RegisterSpec, raw: int) -> int | Decimal:
    """Engineering value: ``raw × scale`` (kept an ``int`` when the scale is 1, as counters are)."""
    if spec.scale == 1:
        return raw
    return Decimal(raw) * spec.scale


def tag_value(name: str, tag: TagSpec, raw: int) -> Value:
    """What a snapshot carries for a tag: counters as int, energy as Decimal, job as its raw text."""
    assert tag.reg is not None
    if name == "job":
        return str(raw)
    value = scaled(tag.reg, raw)
    if name == "energy":
        return Decimal(value)
    return value


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One request: ``count`` registers of ``table`` from ``start``, covering several tags."""

    table: str
    start: int
    count: int
    tags: tuple[tuple[str, TagSpec], ...]


def plan_reads(config: MachineConfig, max_gap: int = 8, max_count: int = 120) -> list[ReadBlock]:
    """Group a machine's registers into few requests (counters read together are read at one instant).

    Registers of one table closer than ``max_gap`` share a request of at most ``max_count`` registers
    (Modbus allows 125); coils and discrete inputs are read one by one.
    """
    blocks: list[ReadBlock] = []
    by_table: dict[str, list[tuple[str, TagSpec]]] = {}
    for name, tag in config.tags().items():
        assert tag.reg is not None
        if tag.reg.table in ("coil", "discrete"):
            blocks.append(ReadBlock(tag.reg.table, tag.reg.address, 1, ((name, tag),)))
        else:
            by_table.setdefault(tag.reg.table, []).append((name, tag))
    for table, tags in by_table.items():
        tags.sort(key=lambda item: item[1].reg.address if item[1].reg else 0)
        group: list[tuple[str, TagSpec]] = []
        start = end = 0
        for name, tag in tags:
            spec = tag.reg
            assert spec is not None
            tag_end = spec.address + spec.width
            if group and spec.address - end <= max_gap and max(end, tag_end) - start <= max_count:
                group.append((name, tag))
                end = max(end, tag_end)
                continue
            if group:
                blocks.append(ReadBlock(table, start, end - start, tuple(group)))
            group, start, end = [(name, tag)], spec.address, tag_end
        if group:
            blocks.append(ReadBlock(table, start, end - start, tuple(group)))
    return blocks


def connection_key(config: MachineConfig) -> Hashable:
    """Devices with equal keys share one TCP connection: same endpoint and connection settings."""
    return (config.endpoint, config.connection)


class _Device:
    """One unit on a Modbus connection: its planned reads and the registers it refuses."""

    def __init__(self, config: MachineConfig) -> None:
        self.config = config
        self.blocks = plan_reads(config)
        self.refused_blocks: set[ReadBlock] = set()  # devices that reject a span read tag by tag
        self.unreadable: set[str] = set()


class ModbusClient:
    """``ProtocolClient`` for the Modbus TCP devices of one endpoint: one connection, one poll loop per device
    (the connection serialises their requests)."""

    def __init__(self, *configs: MachineConfig, timeout_s: float | None = None,
                 backoff_base_s: float | None = None,
                 backoff_cap_s: float | None = None) -> None:  # float-ok: seconds
        if not configs:
            raise ValueError("a Modbus client needs at least one machine config")
        for config in configs:
            if config.protocol != "modbus":
                raise ValueError(f"machine {config.machine}: protocol {config.protocol} is not modbus")
            if connection_key(config) != connection_key(configs[0]):
                raise ValueError(f"machine {config.machine} cannot share the connection of {configs[0].machine}")
        self.config = configs[0]
        self.devices = {config.machine: _Device(config) for config in configs}
        self.host, self.port = self.config.host_port(DEFAULT_PORT)
        # Explicit options win over the machine file's ``connection`` settings (tests, benchmarks).
        connection = self.config.connection
        self.timeout_s = timeout_s or connection.request_timeout_ms / 1000
        self.backoff_base_s = backoff_base_s or connection.reconnect_initial_ms / 1000
        self.backoff_cap_s = backoff_cap_s or connection.reconnect_max_ms / 1000

    async def run(self, session: MachineSession, stop: asyncio.Event) -> None:
        await self.run_many([session], stop)

    async def run_many(self, sessions: Sequence[MachineSession], stop: asyncio.Event) -> None:
        attempt = 0
        lost_at: float | None = None  # float-ok: monotonic seconds
        endpoint = self.config.endpoint
        while not stop.is_set():
            client = AsyncModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=0,
                                          reconnect_delay=0, name=f"mes-bridge {endpoint}")
            up = False
            reason = "stopped"
            try:
                if not await client.connect():
                    raise ConnectionError(f"cannot connect to {endpoint}")
                up = True
                attempt = 0
                for session in sessions:
                    session.on_connected()
                    if lost_at is not None:
                        gap = time.monotonic() - lost_at
                        session.record("reconnect-gap", f"Modbus {endpoint} unreachable for {gap:.1f}s; "
                                                        "counts caught up from the counters", logged=len(sessions) == 1)
                lost_at = None
                await _first_failure([self._poll(client, self.devices[s.machine], s, stop) for s in sessions])
            except (ModbusException, ConnectionError, OSError, TimeoutError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                log.info("%s: %s", endpoint, reason)
                if not up:
                    for session in sessions:
                        session.problem("connection", f"cannot connect to {endpoint}: {reason}")
            finally:
                client.close()
            if up:
                if not stop.is_set():
                    log.warning("Modbus %s (%s): %s", endpoint, ", ".join(s.machine for s in sessions), reason)
                for session in sessions:
                    session.on_disconnected("collector stopped" if stop.is_set() else reason,
                                            logged=len(sessions) == 1)
                lost_at = time.monotonic()  # a gap is only a gap after a link we had: not the first connect
            if stop.is_set():
                break
            attempt += 1
            await sleep_or_stop(stop, backoff_delay(attempt, self.backoff_base_s, self.backoff_cap_s))

    async def _poll(self, client: AsyncModbusTcpClient, device: _Device, session: MachineSession,
                    stop: asyncio.Event) -> None:
        reason = "connect"
        last_job: Value = None
        interval = device.config.poll_interval_ms / 1000
        silent = 0  # polls in a row this unit did not answer
        while not stop.is_set():
            session.read_requested.clear()
            try:
                values = await self.read_all(client, device, session)
            except ModbusIOException as exc:
                if not client.connected:
                    raise  # the connection died (pymodbus closes it after repeated timeouts): rebuilt for all
                # One silent unit behind a gateway must not take its neighbours' connection down; it is asked
                # again less and less often, so its timeouts do not hold the shared connection.
                if silent == 0:
                    session.on_disconnected(f"unit {device.config.device_id} at {self.config.endpoint} does not "
                                            f"answer: {exc}")
                silent += 1
                reason = "connect"  # its first answer again is a fresh baseline reading
                await sleep_or_stop(stop, min(30.0, max(interval, self.timeout_s * 2 ** min(silent, 5))))
                continue
            if silent:
                silent = 0
                session.on_connected()
            if reason != "connect" and values.get("job") != last_job and "job" in values:
                reason = "job-change"
            last_job = values.get("job")
            await session.on_snapshot(Snapshot(device.config.machine, values, datetime.now(UTC), reason))
            reason = "poll"
            await sleep_or_stop(stop, interval, wake=session.read_requested)
            if session.read_requested.is_set():
                reason = "read-requested"

    async def read_all(self, client: AsyncModbusTcpClient, device: _Device,
                       session: MachineSession | None = None) -> dict[str, Value]:
        """Every configured tag of ``device``, read now; None for a register the device refuses."""
        values: dict[str, Value] = {}
        for block in device.blocks:
            if len(block.tags) > 1 and block not in device.refused_blocks:
                response = await self._read(client, device, block.table, block.start, block.count)
                if not response.isError():
                    words = list(response.registers)
                    for name, tag in block.tags:
                        assert tag.reg is not None
                        offset = tag.reg.address - block.start
                        values[name] = tag_value(name, tag, decode_registers(tag.reg, words[offset:]))
                        self._readable(device, name, session)
                    continue
                device.refused_blocks.add(block)
                log.info("%s: %s %d..%d refused as one read (%s); reading tag by tag", device.config.machine,
                         block.table, block.start, block.start + block.count - 1, response)
            for name, tag in block.tags:
                values[name] = await self._read_tag(client, device, name, tag, session)
        return values

    async def _read_tag(self, client: AsyncModbusTcpClient, device: _Device, name: str, tag: TagSpec,
                        session: MachineSession | None) -> Value:
        spec = tag.reg
        assert spec is not None
        response = await self._read(client, device, spec.table, spec.address, spec.width)
        if response.isError():
            if name not in device.unreadable:
                device.unreadable.add(name)
                detail = f"{name}: {spec.table} {spec.address} unreadable: {response}"
                log.warning("%s: %s", device.config.machine, detail)
                if session is not None:
                    session.record("register-unreadable", detail)
                    session.problem(f"register {name}", detail)
            return None
        self._readable(device, name, session)
        words = list(response.bits if spec.table in ("coil", "discrete") else response.registers)
        return tag_value(name, tag, decode_registers(spec, words))

    @staticmethod
    def _readable(device: _Device, name: str, session: MachineSession | None) -> None:
        if name in device.unreadable:
            device.unreadable.discard(name)
            if session is not None:
                session.problem(f"register {name}", None)

    @staticmethod
    async def _read(client: AsyncModbusTcpClient, device: _Device, table: str, address: int, count: int) -> Any:
        unit = device.config.device_id
        if table == "holding":
            return await client.read_holding_registers(address, count=count, device_id=unit)
        if table == "input":
            return await client.read_input_registers(address, count=count, device_id=unit)
        if table == "coil":
            return await client.read_coils(address, count=count, device_id=unit)
        return await client.read_discrete_inputs(address, count=count, device_id=unit)


async def _first_failure(work: Sequence[Coroutine[Any, Any, None]]) -> None:
    """Run the devices' poll loops together until all end (stop) or one fails (the connection): the others are
    cancelled and the failure raised, so the connection is rebuilt for all of them."""
    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            raise failure
