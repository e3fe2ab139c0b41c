"""OPC UA protocol client of the collectors: the machines of one endpoint, one asyncua connection, one subscription.

Owns: the connection loop of one endpoint (the client, its tags and security come from ``opcua_setup``; each
machine's nodes and values from ``opcua_machine``): connecting, resolving ``nsu=`` node ids against the server's
namespace array, reading every configured tag afresh after every connect and reconnect, subscribing to data changes
at ``publishing_interval_ms``, detecting a lost connection or session (transport loss, keepalive probe, overflowing
notification queue) and reconnecting with capped exponential backoff and jitter (the machine file's ``connection``).

Machines served by the same endpoint with the same security and connection settings share the connection
(``connection_key``): what a collector costs grows with the number of servers, not of machines (one keepalive
probe, one publish loop and one socket per server).

Invariants:
- Counter values, never the number of notifications, become events: the server may coalesce 28 increments into 18
  notifications, and every snapshot carries the current counter values, from which the session takes deltas.
- After every (re)connect the first thing delivered for every machine is a full snapshot read in one pass (reason
  "connect"), so parts made while disconnected are counted; nothing relies on queued notifications.
- A job-tag change triggers a fresh read of all of that machine's tags, delivered as one snapshot (reason
  "job-change"), so the counts up to the change are attributed before the new job takes over.
- Reads and monitored-item registrations are split by the server's MaxNodesPerRead / MaxMonitoredItemsPerCall (a safe
  chunk when the server announces none or cannot be asked).
- A node that cannot be read, monitored or resolved is named in its machine's health and left out (value None); it
  never stops the other tags, and one endpoint's dead server never blocks another (each runs in its own task, every
  request has a timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncua import Client, ua
from asyncua.common.subscription import DataChangeEvent, OverflowPolicy, StatusChangeEvent, Subscription

from mes_bridge.collectors.core import MachineSession, Snapshot
from mes_bridge.collectors.opcua_machine import MachineNodes
from mes_bridge.collectors.opcua_setup import (
    OpcUaConfigError,
    Tag,
    browse_path,
    default_trust,
    make_client,
    translated,
)
from mes_bridge.forwarder import sleep_or_stop
from mes_bridge.plc_config import MachineConfig
from mes_common.errors import DomainError

log = logging.getLogger(__name__)

SAFE_CHUNK = 100  # nodes per request when the server announces no limit we can use
MAX_NODES_PER_READ = ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead
MAX_MONITORED_ITEMS_PER_CALL = ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall
NAMESPACE_ARRAY = ua.ObjectIds.Server_NamespaceArray


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter: attempt n waits a random time in [cap_n / 2, cap_n]."""

    initial: float = 0.2
    maximum: float = 1.0
    factor: float = 2.0

    @classmethod
    def of(cls, config: MachineConfig) -> Backoff:
        """The machine file's reconnect backoff (``connection.reconnect_initial_ms`` / ``reconnect_max_ms``)."""
        connection = config.connection
        return cls(initial=connection.reconnect_initial_ms / 1000, maximum=connection.reconnect_max_ms / 1000)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.maximum, self.initial * self.factor ** min(attempt, 32))
        # Jitter spreads the reconnects of many collectors after a shared outage (no thundering herd).
        return ceiling * (0.5 + 0.5 * (rng or random).random())


def connection_key(config: MachineConfig) -> Hashable:
    """Machines with equal keys can share one connection: same endpoint, security, timeouts and publishing."""
    return (config.endpoint, config.security, config.connection, config.publishing_interval_ms,
            config.source.parent if config.source else None)  # relative certificate paths resolve alike


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class OpcUaClient:
    """``ProtocolClient`` for the machines of one endpoint: ``await OpcUaClient(config).run(session, stop)``, or
    ``await OpcUaClient(*configs).run_many(sessions, stop)`` for several sharing a connection."""

    def __init__(
        self,
        *configs: MachineConfig,
        base_dir: Path | None = None,
        backoff: Backoff | None = None,
        request_timeout: float | None = None,
        watchdog_interval: float | None = None,
        session_timeout_ms: int | None = None,
        password: str | None = None,
        trust: Path | None = None,
    ) -> None:
        if not configs:
            raise OpcUaConfigError("an OPC UA client needs at least one machine config")
        for config in configs:
            if config.protocol != "opcua":
                raise OpcUaConfigError(f"machine {config.machine}: protocol {config.protocol!r} is not opcua")
            if connection_key(config) != connection_key(configs[0]):
                raise OpcUaConfigError(f"machine {config.machine} cannot share the connection of machine "
                                       f"{configs[0].machine}: endpoint, security or connection settings differ")
        self.config = config = configs[0]  # endpoint, security and connection settings (equal for all)
        self.machines = [MachineNodes(c) for c in configs]
        self._by_node: dict[ua.NodeId, list[tuple[MachineNodes, Tag]]] = {}
        self._index_nodes()
        # Relative certificate paths are relative to the machine's config file (else the working directory).
        self._base_dir = base_dir or (config.source.parent if config.source else Path.cwd())
        # Explicit options win over the machine file's ``connection`` settings (tests, benchmarks).
        connection = config.connection
        self.backoff = backoff or Backoff.of(config)
        self._request_timeout = request_timeout or connection.request_timeout_ms / 1000
        self._connect_timeout = max(self._request_timeout, connection.connect_timeout_ms / 1000)
        self._watchdog_interval = watchdog_interval or connection.keepalive_interval_ms / 1000
        self._session_timeout_ms = session_timeout_ms or connection.session_timeout_ms
        self._password = password
        self._trust = trust  # None: the machine file's trust folder, looked up at every connect (it may appear later)
        self._rng = random.Random()
        self._subscription_id: int | None = None  # of the previous connection, offered for transfer
        self.connects = 0  # successful connects (health, tests)
        self.failures = 0  # connection attempts that failed before data flowed
        self.last_failure = ""

    @property
    def tags(self) -> list[Tag]:
        """The first machine's nodes on the current connection (a one-machine client's tags)."""
        return self.machines[0].tags

    def _index_nodes(self) -> None:
        self._by_node = {}
        for machine in self.machines:
            for tag in machine.tags:
                self._by_node.setdefault(tag.node_id, []).append((machine, tag))

    def bind(self, sessions: Sequence[MachineSession]) -> None:
        """The session each machine's readings go to."""
        by_name = {s.machine: s for s in sessions}
        missing = [m.machine for m in self.machines if m.machine not in by_name]
        if missing:
            raise OpcUaConfigError(f"no session for machines {missing} of {self.config.endpoint}")
        for machine in self.machines:
            machine.session = by_name[machine.machine]

    def _sessions(self) -> list[MachineSession]:
        return [m.session for m in self.machines if m.session is not None]

    # ------------------------------------------------------------------------------------------------ run loop

    async def run(self, session: MachineSession, stop: asyncio.Event) -> None:
        await self.run_many([session], stop)

    async def run_many(self, sessions: Sequence[MachineSession], stop: asyncio.Event) -> None:
        """Collect until ``stop`` is set: connect, read, subscribe; on any loss back off and start over."""
        self.bind(sessions)
        attempt = 0
        lost_at: float | None = None  # monotonic time the data stopped flowing, for the reconnect-gap record
        while not stop.is_set():
            link = _Link()
            try:
                await self._connected(stop, lost_at, link)
            except _RETRYABLE as exc:
                link.reason = link.reason or f"{type(exc).__name__}: {exc}".rstrip(": ")
            if not link.up and not stop.is_set():
                self.failures += 1
                self.last_failure = link.reason
                for session in sessions:
                    session.problem("connection", f"cannot connect to {self.config.endpoint}: {link.reason}")
            shared = len(sessions) > 1  # then this client's log line stands for all its machines
            if link.up:
                attempt, lost_at = 0, None
                for session in sessions:
                    session.on_disconnected("collector stopped" if stop.is_set() else link.reason, logged=not shared)
            if stop.is_set():
                break
            if lost_at is None:
                lost_at = time.monotonic()
            delay = self.backoff.delay(attempt, self._rng)
            attempt += 1
            log.warning("OPC UA %s (%s): %s (%s); retrying in %.1fs", self.config.endpoint,
                        ", ".join(m.machine for m in self.machines),
                        "connection lost" if link.up else "connect failed", link.reason, delay)
            await sleep_or_stop(stop, delay)

    async def _connected(self, stop: asyncio.Event, lost_at: float | None, link: _Link) -> None:
        """One connection's life: returns on stop; raises (with ``link.reason`` set) on any loss."""
        client = await make_client(
            self.config,
            self._base_dir,
            request_timeout=self._request_timeout,
            watchdog_interval=self._watchdog_interval,
            session_timeout_ms=self._session_timeout_ms,
            password=self._password,
            trust=self._trust if self._trust is not None else default_trust(self.config, self._base_dir),
        )
        lost = asyncio.Event()

        async def on_lost(exc: Exception) -> None:
            link.reason = link.reason or f"{type(exc).__name__}: {exc}".rstrip(": ")
            lost.set()

        client.connection_lost_callback = on_lost
        try:
            await asyncio.wait_for(client.connect(), self._connect_timeout)
            self.connects += 1
            await self._resolve(client)
            read_limit = await self._limit(client, MAX_NODES_PER_READ)
            monitor_limit = await self._limit(client, MAX_MONITORED_ITEMS_PER_CALL)
            link.up = True
            for session in self._sessions():
                session.on_connected()
                if lost_at is not None and self.connects > 1:  # a reconnect, not the first connect
                    gap = time.monotonic() - lost_at
                    session.record("reconnect-gap", f"OPC UA {self.config.endpoint} unreachable for {gap:.1f}s; "
                                                    "counters re-read on reconnect", logged=len(self.machines) == 1)
            await self._deliver_full(client, self.machines, read_limit, "connect")
            await self._transfer_previous(client)
            subscription = await self._subscribe(client, monitor_limit)
            await self._pump(client, subscription, read_limit, stop, lost)
        except _ConnectionLost as exc:
            link.reason = link.reason or str(exc)
            raise
        finally:
            await self._close(client)

    async def _close(self, client: Client) -> None:
        # A dead peer can leave CloseSession hanging: bounded, and failures only logged.
        try:
            await asyncio.wait_for(client.disconnect(), self._request_timeout)
        except Exception as exc:  # any teardown failure: the socket is dropped below regardless
            log.debug("OPC UA %s: disconnect: %r", self.config.endpoint, exc)
        with contextlib.suppress(Exception):
            client.disconnect_socket()

    async def _limit(self, client: Client, node: int) -> int:
        try:
            value = await client.get_node(ua.NodeId(ua.Int32(node))).read_value()
        except (ua.UaError, TimeoutError) as exc:
            log.info("OPC UA %s: server operation limit %s unreadable (%r); chunks of %d", self.config.endpoint,
                     node, exc, SAFE_CHUNK)
            return SAFE_CHUNK
        return int(value) if isinstance(value, int) and value > 0 else SAFE_CHUNK

    async def _resolve(self, client: Client) -> None:
        """This connection's node ids: ``nsu=`` ids get the namespace index the server uses now, browse paths are
        translated by the server (TranslateBrowsePathsToNodeIds) into the nodes they lead to.

        A server may renumber its namespaces when it restarts, so the array is read on every connect; a namespace
        the server does not have leaves that tag out (named in the health) and the machine's other tags work.
        """
        if not any(m.needs_namespaces for m in self.machines):
            return
        namespaces = [str(uri) for uri in await client.get_node(ua.NodeId(ua.Int32(NAMESPACE_ARRAY))).read_value()]
        requests: list[tuple[MachineNodes, Tag, ua.BrowsePath]] = []
        for machine in self.machines:
            for tag, problem in machine.unresolved(machine.resolve(namespaces)):
                machine.report_bad(tag, problem)
            for tag in machine.configured:
                if tag.path is not None:
                    request = browse_path(tag, namespaces)
                    if isinstance(request, str):
                        machine.report_bad(tag, request)
                    else:
                        requests.append((machine, tag, request))
        for chunk in _chunks(requests, SAFE_CHUNK):
            results = await client.uaclient.translate_browsepaths_to_nodeids([request for _, _, request in chunk])
            for (machine, tag, _), result in zip(chunk, results, strict=True):
                found = translated(tag, result)
                if isinstance(found, str):
                    machine.report_bad(tag, found)
                else:
                    machine.tags.append(found)
        self._index_nodes()

    # ----------------------------------------------------------------------------------------------- reading

    async def _read(self, client: Client, tags: Sequence[Tag], read_limit: int) -> list[ua.DataValue]:
        """The current values of ``tags``, in as few requests as the server's limit allows."""
        out: list[ua.DataValue] = []
        for chunk in _chunks(tags, read_limit):
            params = ua.ReadParameters()
            params.TimestampsToReturn = ua.TimestampsToReturn.Both
            for tag in chunk:
                item = ua.ReadValueId()
                item.NodeId = tag.node_id
                item.AttributeId = ua.AttributeIds.Value
                params.NodesToRead.append(item)
            out += await client.uaclient.read(params)
        return out

    async def _deliver_full(self, client: Client, machines: Sequence[MachineNodes], read_limit: int,
                            reason: str) -> None:
        """Read every tag of ``machines`` afresh and hand each machine its snapshot (their commits grouped)."""
        pairs = [(machine, tag) for machine in machines for tag in machine.tags]
        results = await asyncio.wait_for(self._read(client, [tag for _, tag in pairs], read_limit),
                                         self._request_timeout * 2)
        per_machine: dict[str, list[tuple[Tag, ua.DataValue]]] = {m.machine: [] for m in machines}
        for (machine, tag), data_value in zip(pairs, results, strict=True):
            per_machine[machine.machine].append((tag, data_value))
        await self._hand_over([(m, m.full_read(per_machine[m.machine], reason)) for m in machines])

    @staticmethod
    async def _hand_over(snapshots: Sequence[tuple[MachineNodes, Snapshot]]) -> None:
        # Together, so that the readings of the endpoint's machines share the spool's next group commit.
        await asyncio.gather(*(m.session.on_snapshot(s) for m, s in snapshots if m.session is not None))

    # ------------------------------------------------------------------------------------------ subscriptions

    async def _transfer_previous(self, client: Client) -> None:
        """Offer the previous connection's subscription to the new session, then drop it.

        The fresh read has already covered the gap, so the old subscription's queued notifications are not needed;
        taking it over frees it on the server at once instead of at the old session's timeout. When the server no
        longer has it (it restarted) the failed transfer is recorded: its notifications are gone, the counts are not.
        """
        old, self._subscription_id = self._subscription_id, None
        if old is None:
            return
        params = ua.TransferSubscriptionsParameters()
        params.SubscriptionIds = [old]
        params.SendInitialValues = False
        try:
            results = await client.uaclient.transfer_subscriptions(params)
            status = (
                results[0].StatusCode if results else ua.StatusCode(ua.UInt32(ua.StatusCodes.BadSubscriptionIdInvalid))
            )
        except ua.UaStatusCodeError as exc:
            status = ua.StatusCode(ua.UInt32(exc.code))
        log.debug("OPC UA %s: transfer of subscription %s: %s", self.config.endpoint, old, status.name)
        if status.is_good():
            with contextlib.suppress(ua.UaError, TimeoutError):
                await client.delete_subscriptions([old])
            return
        for session in self._sessions():
            session.record("subscription-transfer-failed", f"subscription {old} could not be transferred "
                                                           f"({status.name}); counters were re-read instead",
                           logged=len(self.machines) == 1)

    async def _subscribe(self, client: Client, monitor_limit: int) -> Subscription:
        interval = float(self.config.publishing_interval_ms)  # float-ok: milliseconds
        # Bounded queue; overflowing it drops the connection (so: a full re-read), never a job change.
        subscription = await client.create_subscription(
            interval, None, queue_maxsize=10_000, overflow=OverflowPolicy.DISCONNECT
        )
        self._subscription_id = subscription.subscription_id
        pairs = [(machine, tag) for machine in self.machines for tag in machine.tags]
        for chunk in _chunks(pairs, monitor_limit):
            nodes = [client.get_node(tag.node_id) for _, tag in chunk]
            # queuesize 1: only the latest value matters, the counter carries the count.
            results = await subscription.subscribe_data_change(
                nodes, queuesize=1, sampling_interval=ua.Double(interval / 2)
            )
            for (machine, tag), result in zip(chunk, results, strict=True):
                if isinstance(result, ua.StatusCode):
                    machine.report_bad(tag, f"cannot be monitored ({result.name})")
        return subscription

    async def _pump(self, client: Client, subscription: Subscription, read_limit: int, stop: asyncio.Event,
                    lost: asyncio.Event) -> None:
        """Turn notification bursts into snapshots until stop (return) or loss (raise); a full reading of a machine
        whenever its session asks for one (a work order scanned at the machine)."""
        stop_wait = asyncio.ensure_future(stop.wait())
        lost_wait = asyncio.ensure_future(lost.wait())
        reads = {asyncio.ensure_future(m.session.read_requested.wait()): m for m in self.machines if m.session}
        next_event: asyncio.Future[Any] | None = None
        try:
            while True:
                if next_event is None:
                    next_event = asyncio.ensure_future(subscription.next_event())
                done, _ = await asyncio.wait({next_event, stop_wait, lost_wait, *reads},
                                             return_when=asyncio.FIRST_COMPLETED)
                if stop_wait in done:
                    return
                if lost_wait in done:
                    raise _ConnectionLost("connection lost")
                wanted = [reads.pop(waiter) for waiter in done if waiter in reads]
                for machine in wanted:
                    assert machine.session is not None
                    machine.session.read_requested.clear()
                    reads[asyncio.ensure_future(machine.session.read_requested.wait())] = machine
                if wanted:
                    await self._deliver_full(client, wanted, read_limit, "read-requested")
                if next_event.done():
                    try:
                        events = [next_event.result(), *_drain(subscription)]
                    except StopAsyncIteration:
                        raise _ConnectionLost("subscription closed") from None
                    next_event = None
                    await self._handle(client, events, read_limit)
        finally:
            for waiter in (stop_wait, lost_wait, *reads):
                waiter.cancel()
            if next_event is not None and not next_event.done():
                next_event.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await next_event

    async def _handle(self, client: Client, events: list[Any], read_limit: int) -> None:
        """One burst of notifications: per machine the latest value per tag; a job change re-reads that machine."""
        per_machine: dict[str, tuple[MachineNodes, list[tuple[Tag, ua.DataValue]]]] = {}
        for event in events:
            if isinstance(event, StatusChangeEvent):
                status = event.notification.Status
                if not status.is_good():
                    raise _ConnectionLost(f"subscription status {status.name}")
                continue
            if not isinstance(event, DataChangeEvent):
                continue
            for machine, tag in self._by_node.get(event.node.nodeid, ()):
                per_machine.setdefault(machine.machine, (machine, []))[1].append(
                    (tag, event.data.monitored_item.Value))
        reread: list[MachineNodes] = []
        snapshots: list[tuple[MachineNodes, Snapshot]] = []
        for machine, notifications in per_machine.values():
            meaning = machine.changes(notifications)
            if meaning == "job":
                reread.append(machine)
            elif isinstance(meaning, Snapshot):
                snapshots.append((machine, meaning))
        if reread:
            await self._deliver_full(client, reread, read_limit, "job-change")
        await self._hand_over(snapshots)


def _drain(subscription: Subscription) -> list[Any]:
    """Notifications already queued behind the first one (asyncua 2.1 iterator queue; the pin is ~=2.1.0)."""
    queue = subscription._event_queue
    out: list[Any] = []
    while queue is not None and not queue.empty():
        item = queue.get_nowait()
        if item is None:  # the iterator's end marker: the subscription was closed
            raise StopAsyncIteration
        out.append(item)
    return out


@dataclass(slots=True)
class _Link:
    up: bool = False
    reason: str = ""


class _ConnectionLost(Exception):
    """The connection or session died under a running subscription."""


_RETRYABLE = (OSError, TimeoutError, ConnectionError, ua.UaError, _ConnectionLost, DomainError)
