"""Simulated OPC UA machines (CNC controllers, vision stations) on asyncua's ``Server``, driven by ``plc_configs``.

Owns: one asyncua server per OPC UA endpoint (several machine configs may share an endpoint, as machines behind one
line controller do; its security, logins and teardown come from ``opcua_sim_server``), the address space of the
configured nodes (counters as UInt16/UInt32/UInt64 by ``bits``, the job as a String, the energy meter as a Double in
kWh), part production at the configured rate and test hooks: set a counter, reset the counters (controller reboot),
change the job, pause production, restart the server.

Invariants:
- The machine is separate from its OPC UA server: stopping or restarting the server does not stop production, so
  parts made while the server is down show up in the counters when it comes back, as on a real controller.
- ``produced`` counts every part exactly per counter name, independent of rollover and resets: it is the truth the
  tests compare the collected events with.
- Outcomes follow the configured ratios deterministically (error accumulation, no randomness), so runs repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from asyncua import Node, Server, ua
from asyncua.common.callback import CallbackType, ServerItemCallback

from mes_bridge.plc_config import MachineConfig, TagSpec
from mes_bridge.simulators.opcua_sim_server import (
    SimulatorError,
    close_detached_sessions,
    demo_credentials,
    secured_server,
    users_from_config,
)

log = logging.getLogger(__name__)

VARIANT_BY_BITS = {16: ua.VariantType.UInt16, 32: ua.VariantType.UInt32, 64: ua.VariantType.UInt64}
# Which counter a part's outcome increments; vision stations call good/scrap pass/fail.
OUTCOME_COUNTERS = {"good": ("good", "pass"), "scrap": ("scrap", "fail"), "rework": ("rework",)}
MAX_NODES_PER_READ = ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead
MAX_MONITORED_ITEMS_PER_CALL = ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall
ChangeHook = Callable[[str, str, object, float], None]


@dataclass
class SimulatedMachine:
    """The controller: counters, job and energy meter, independent of any OPC UA server exposing them."""

    config: MachineConfig
    counters: dict[str, int] = field(default_factory=dict)  # raw counter values (wrap at 2**bits)
    produced: dict[str, int] = field(default_factory=dict)  # exact parts per counter since the simulator started
    job: str | None = None
    energy_kwh: Decimal = Decimal(0)
    paused: bool = False
    _accumulated: dict[str, Decimal] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.machine

    def bits(self, counter: str) -> int:
        return self.config.counters[counter].counter_bits

    def counter_for(self, outcome: str) -> str:
        for name in OUTCOME_COUNTERS[outcome]:
            if name in self.config.counters:
                return name
        # An outcome the machine has no counter for is not visible to anyone: count it as the first counter.
        return next(iter(self.config.counters))

    def next_outcome(self) -> str:
        sim = self.config.simulation
        ratios = {"scrap": sim.scrap_ratio, "rework": sim.rework_ratio}
        for outcome, ratio in ratios.items():
            total = self._accumulated.get(outcome, Decimal(0)) + ratio
            if total >= 1:
                self._accumulated[outcome] = total - 1
                return outcome
            self._accumulated[outcome] = total
        return "good"


class OpcUaSimulator:
    """An asyncua server exposing one or more simulated machines at one endpoint."""

    def __init__(
        self,
        configs: Sequence[MachineConfig],
        *,
        certificate: Path | None = None,
        private_key: Path | None = None,
        trust: Path | None = None,
        users: Mapping[str, str] | None = None,
        allow_anonymous: bool | None = None,
        max_nodes_per_read: int | None = None,
        max_monitored_items_per_call: int | None = None,
        on_change: ChangeHook | None = None,
        base_dir: Path | None = None,
        strict: bool = False,
    ) -> None:
        if not configs:
            raise SimulatorError("an OPC UA simulator needs at least one machine config")
        endpoints = {c.endpoint for c in configs}
        if len(endpoints) != 1:
            raise SimulatorError(
                f"machines {[c.machine for c in configs]} do not share one endpoint: {sorted(endpoints)}"
            )
        self.endpoint = configs[0].endpoint
        self.machines: dict[str, SimulatedMachine] = {}
        for config in configs:
            machine = SimulatedMachine(config)
            start = config.simulation.counter_start
            for name in config.counters:
                machine.counters[name] = start % (1 << machine.bits(name))
                machine.produced[name] = 0
            machine.job = config.simulation.job
            self.machines[config.machine] = machine
        security = configs[0].security
        self._policy = security.policy
        self._mode = security.mode
        self._certificate, self._private_key, self._trust = certificate, private_key, trust
        if self._policy != "None" and (certificate is None or private_key is None):
            self._certificate, self._private_key, default_trust = demo_credentials(configs[0], base_dir)
            self._trust = trust or default_trust
        self._strict = strict  # asyncua's own strict client-certificate validation instead of the trust list
        self._users = dict(users) if users is not None else users_from_config(configs)
        self._allow_anonymous = allow_anonymous if allow_anonymous is not None else not self._users
        self._limits = {
            MAX_NODES_PER_READ: max_nodes_per_read,
            MAX_MONITORED_ITEMS_PER_CALL: max_monitored_items_per_call,
        }
        self.on_change = on_change
        self.server: Server | None = None
        self._nodes: dict[tuple[str, str], ua.NodeId] = {}  # (machine, tag) -> node id
        self.leading_namespaces: list[str] = []  # registered first on the next server built (test hook)
        self._production: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        self.largest_read = 0  # most nodes a client read in one request (checks the client's chunking)
        self.largest_monitored_items_call = 0
        self.starts = 0

    # ----------------------------------------------------------------------------------------------- lifecycle

    async def start(self, *, produce: bool = True) -> None:
        """Start the server and, unless told otherwise, production at the configured rates."""
        await self.start_server()
        if produce:
            self.start_production()

    async def stop(self) -> None:
        await self.stop_production()
        await self.stop_server()

    async def __aenter__(self) -> OpcUaSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start_server(self) -> None:
        if self.server is not None:
            return
        await self._start(await self._build_server())

    async def _start(self, server: Server) -> None:
        async with self._lock:  # the values the machines reached while this server was being built
            for machine in self.machines.values():
                for tag, _, (value, variant) in self._tags(machine):
                    await server.write_attribute_value(
                        self._nodes[(machine.name, tag)],
                        ua.DataValue(ua.Variant(value, variant), SourceTimestamp=ua.DateTime.now(UTC)),
                    )
            await server.start()
            self.server = server
        self.starts += 1
        url = urlparse(self.endpoint)
        log.info("OPC UA simulator for %s listening on %s:%s", ", ".join(self.machines), url.hostname, url.port)

    async def _build_server(self) -> Server:
        """A configured server with the address space, not yet listening (asyncua's init takes a second or two)."""
        server = await secured_server(
            self.endpoint,
            list(self.machines),
            policy=self._policy,
            mode=self._mode,
            certificate=self._certificate,
            private_key=self._private_key,
            trust=self._trust,
            users=self._users,
            allow_anonymous=self._allow_anonymous,
            strict=self._strict,
        )
        await self._build_address_space(server)
        for node_id, limit in self._limits.items():
            if limit is not None:
                await server.get_node(ua.NodeId(ua.Int32(node_id))).write_value(
                    ua.Variant(limit, ua.VariantType.UInt32)
                )
        server.subscribe_server_callback(CallbackType.PreRead, self._observe_read)
        server.subscribe_server_callback(CallbackType.ItemSubscriptionCreated, self._observe_monitored_items)
        return server

    async def stop_server(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            await server.stop()
            await close_detached_sessions(server)

    async def restart(self, downtime: float = 0.0) -> None:
        """Stop the server (sessions and subscriptions die with it), wait, start a fresh one; the machines run on.

        The replacement is built before the old server stops, so the outage lasts ``downtime`` (plus start-up).
        """
        replacement = await self._build_server()
        await self.stop_server()
        await asyncio.sleep(downtime)
        await self._start(replacement)

    async def _build_address_space(self, server: Server) -> None:
        # Namespaces a vendor's server registers before the machine's own: changing them between restarts moves
        # the index of every ``nsu=`` namespace, as a real server may do.
        for uri in self.leading_namespaces:
            await server.register_namespace(uri)
        folders: dict[tuple[tuple[str, str], ...], Node] = {}
        for machine in self.machines.values():
            by_node = [(tag, await self._server_node_id(server, spec.node), value)
                       for tag, spec, value in self._tags(machine) if spec.node is not None]
            if by_node:
                first_ns = by_node[0][1].NamespaceIndex
                folder = await server.nodes.objects.add_object(ua.NodeId(ua.String(machine.name), first_ns),
                                                               machine.name)
                for tag, node_id, (value, variant) in by_node:
                    await folder.add_variable(node_id, ua.QualifiedName(tag, node_id.NamespaceIndex), value, variant)
                    self._nodes[(machine.name, tag)] = node_id
            for tag, spec, (value, variant) in self._tags(machine):
                if spec.path is not None:
                    self._nodes[(machine.name, tag)] = await self._add_by_path(server, folders, spec.path_elements(),
                                                                               value, variant)

    @staticmethod
    async def _add_by_path(server: Server, folders: dict[tuple[tuple[str, str], ...], Node],
                           elements: tuple[tuple[str, str], ...], value: Any, variant: ua.VariantType) -> ua.NodeId:
        """A variable at a browse path from the Objects folder, with the folders on the way (a companion
        specification's layout: the node ids are the server's business, the browse names are the contract)."""
        parent = server.nodes.objects
        for depth in range(1, len(elements)):
            key = elements[:depth]
            if key not in folders:
                uri, name = key[-1]
                index = ua.Int16(await server.register_namespace(uri))
                node_id = ua.NodeId(ua.String("/".join(n for _, n in key)), index)
                folders[key] = await parent.add_folder(node_id, ua.QualifiedName(name, index))
            parent = folders[key]
        uri, name = elements[-1]
        index = ua.Int16(await server.register_namespace(uri))
        node_id = ua.NodeId(ua.String("/".join(n for _, n in elements)), index)
        await parent.add_variable(node_id, ua.QualifiedName(name, index), value, variant)
        return node_id

    async def _server_node_id(self, server: Server, text: str) -> ua.NodeId:
        """The node id a configured ``ns=`` or ``nsu=`` text has on this server (namespaces registered as needed)."""
        node_id = ua.NodeId.from_string(text)
        uri = node_id.NamespaceUri if isinstance(node_id, ua.ExpandedNodeId) else None
        if uri:
            index = await server.register_namespace(uri)  # the existing index when already registered
            return ua.NodeId(node_id.Identifier, ua.Int16(index), node_id.NodeIdType)
        while node_id.NamespaceIndex >= len(await server.get_namespace_array()):
            count = len(await server.get_namespace_array())
            await server.register_namespace(f"urn:mes-bridge:simulator:ns{count}")
        return node_id

    def _tags(self, machine: SimulatedMachine) -> list[tuple[str, TagSpec, tuple[Any, ua.VariantType]]]:
        config = machine.config
        tags: list[tuple[str, TagSpec, tuple[Any, ua.VariantType]]] = []
        for name, counter in config.counters.items():
            if counter.node is None and counter.path is None:
                raise SimulatorError(f"machine {machine.name}: counter {name!r} has no OPC UA node or path")
            tags.append((name, counter, (machine.counters[name], VARIANT_BY_BITS[counter.counter_bits])))
        if config.job is not None:
            tags.append(("job", config.job, (machine.job or "", ua.VariantType.String)))
        if config.energy is not None:
            tags.append(("energy", config.energy, (float(machine.energy_kwh), ua.VariantType.Double)))
        return tags

    async def _observe_read(self, event: ServerItemCallback, _dispatcher: object) -> None:
        if event.is_external:
            self.largest_read = max(self.largest_read, len(event.request_params.NodesToRead))

    async def _observe_monitored_items(self, event: ServerItemCallback, _dispatcher: object) -> None:
        if event.is_external:
            self.largest_monitored_items_call = max(
                self.largest_monitored_items_call, len(event.request_params.ItemsToCreate)
            )

    # ---------------------------------------------------------------------------------------------- production

    def start_production(self) -> None:
        if self._production:
            return
        for machine in self.machines.values():
            rate = machine.config.simulation.parts_per_minute
            if rate > 0:
                interval = 60 / float(rate)  # float-ok: a sleep duration in seconds
                self._production.append(asyncio.create_task(self._produce_forever(machine, interval)))

    async def stop_production(self) -> None:
        tasks, self._production = self._production, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _produce_forever(self, machine: SimulatedMachine, interval: float) -> None:
        # Machines are not in step: each starts at its own phase (fixed by its name, so runs repeat).
        phase = (zlib.crc32(machine.name.encode()) % 1000) / 1000
        next_at = time.monotonic() + interval * (0.5 + phase / 2)
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval
            if not machine.paused:
                await self.produce(machine.name, machine.next_outcome())

    def pause(self, machine: str | None = None) -> None:
        """Stop making parts (a changeover); the server keeps serving."""
        for m in self._select(machine):
            m.paused = True

    def resume(self, machine: str | None = None) -> None:
        for m in self._select(machine):
            m.paused = False

    def _select(self, machine: str | None) -> Iterable[SimulatedMachine]:
        return self.machines.values() if machine is None else [self.machine(machine)]

    def machine(self, name: str) -> SimulatedMachine:
        try:
            return self.machines[name]
        except KeyError:
            raise SimulatorError(f"no simulated machine {name!r} at {self.endpoint}") from None

    async def produce(self, machine: str, outcome: str = "good", parts: int = 1) -> None:
        """Make ``parts`` parts with one outcome (good, scrap, rework): counters, energy and the truth move together."""
        m = self.machine(machine)
        counter = m.counter_for(outcome)
        async with self._lock:
            m.produced[counter] += parts
            m.counters[counter] = (m.counters[counter] + parts) % (1 << m.bits(counter))
            kwh = m.config.simulation.kwh_per_part
            m.energy_kwh += kwh * parts
            await self._publish(m, counter, m.counters[counter])
            if kwh and m.config.energy is not None:
                await self._publish(m, "energy", m.energy_kwh)

    async def set_counter(self, machine: str, counter: str, value: int) -> None:
        """Write a raw counter value (test hook); the truth is not changed."""
        m = self.machine(machine)
        async with self._lock:
            m.counters[counter] = value % (1 << m.bits(counter))
            await self._publish(m, counter, m.counters[counter])

    async def reset_counters(self, machine: str, value: int = 0) -> None:
        """A controller reboot: every counter of the machine drops to ``value``; parts made so far stay made."""
        m = self.machine(machine)
        async with self._lock:
            for counter in m.counters:
                m.counters[counter] = value
                await self._publish(m, counter, value)

    async def set_job(self, machine: str, job: str | None) -> None:
        m = self.machine(machine)
        async with self._lock:
            m.job = job
            await self._publish(m, "job", job or "")

    def produced(self, machine: str) -> dict[str, int]:
        return dict(self.machine(machine).produced)

    async def _publish(self, machine: SimulatedMachine, tag: str, value: object) -> None:
        changed_at = time.time()  # float-ok: wall-clock instant, not a quantity
        if self.on_change is not None:
            self.on_change(machine.name, tag, value, changed_at)
        node_id = self._nodes.get((machine.name, tag))
        if self.server is None or node_id is None:
            return
        if tag == "energy":
            variant = ua.Variant(float(value), ua.VariantType.Double)  # type: ignore[arg-type]  # float-ok: a Double tag
        elif tag == "job":
            variant = ua.Variant(value, ua.VariantType.String)
        else:
            variant = ua.Variant(value, VARIANT_BY_BITS[machine.bits(tag)])
        stamp = ua.DateTime.fromtimestamp(changed_at, UTC)
        await self.server.write_attribute_value(
            node_id, ua.DataValue(variant, SourceTimestamp=stamp, ServerTimestamp=stamp)
        )


def build_simulators(configs: Iterable[MachineConfig], **options: Any) -> list[OpcUaSimulator]:
    """One simulator per distinct OPC UA endpoint among ``configs`` (Modbus configs are ignored)."""
    by_endpoint: dict[str, list[MachineConfig]] = {}
    for config in configs:
        if config.protocol == "opcua":
            by_endpoint.setdefault(config.endpoint, []).append(config)
    return [OpcUaSimulator(group, **options) for group in by_endpoint.values()]


async def run_opcua_simulators(configs: Iterable[MachineConfig], stop: asyncio.Event, **options: Any) -> None:
    """Serve every OPC UA machine of ``configs`` until ``stop`` is set."""
    simulators = build_simulators(configs, **options)
    try:
        for simulator in simulators:
            await simulator.start()
        await stop.wait()
    finally:
        for simulator in simulators:
            await simulator.stop()

