"""OPC UA protocol client of the collectors: one machine config, one asyncua connection, subscriptions to data changes.

Owns: the session loop of one machine: connecting (the client, its tags and security come from ``opcua_setup``),
reading every configured tag afresh after every connect and reconnect, subscribing to data changes at
``publishing_interval_ms``, detecting a lost connection or session (transport loss, keepalive probe, overflowing
notification queue) and reconnecting with capped exponential backoff and jitter.

Invariants:
- Counter values, never the number of notifications, become events: the server may coalesce 28 increments into 18
  notifications, and every snapshot carries the current counter values, from which the session takes deltas.
- After every (re)connect the first thing delivered is a full snapshot read in one pass (reason "connect"), so parts
  made while disconnected are counted when the connection returns; nothing relies on queued notifications.
- A job-tag change triggers a fresh read of all tags, delivered as one snapshot (reason "job-change"), so the counts
  up to the change are attributed before the new job takes over.
- Reads and monitored-item registrations are split by the server's MaxNodesPerRead / MaxMonitoredItemsPerCall (a safe
  chunk when the server announces none or cannot be asked).
- A node that cannot be read or monitored is recorded and left out (value ``None``); it never stops the other tags,
  and one machine's dead server never blocks another machine (each runs in its own task, every request has a timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from asyncua import Client, ua
from asyncua.common.subscription import DataChangeEvent, OverflowPolicy, StatusChangeEvent, Subscription

from mes_bridge.collectors.core import MachineSession, Snapshot
from mes_bridge.collectors.opcua_setup import (
    OpcUaConfigError,
    Tag,
    default_trust,
    machine_tags,
    make_client,
    needs_namespaces,
    resolve_tags,
    tag_value,
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


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class OpcUaClient:
    """``ProtocolClient`` for one OPC UA machine config: ``await OpcUaClient(config).run(session, stop)``."""

    def __init__(
        self,
        config: MachineConfig,
        *,
        base_dir: Path | None = None,
        backoff: Backoff | None = None,
        request_timeout: float | None = None,
        watchdog_interval: float | None = None,
        session_timeout_ms: int | None = None,
        password: str | None = None,
        trust: Path | None = None,
    ) -> None:
        if config.protocol != "opcua":
            raise OpcUaConfigError(f"machine {config.machine}: protocol {config.protocol!r} is not opcua")
        self.config = config
        # As configured (``nsu=`` ids unresolved); ``tags`` / ``_by_node`` are this connection's resolved nodes.
        self.configured = machine_tags(config)
        self.tags = [] if needs_namespaces(self.configured) else list(self.configured)
        self._by_node = {tag.node_id: tag for tag in self.tags}
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
        self._job: str | None = None
        self._energy: Decimal | None = None
        self._subscription_id: int | None = None  # of the previous connection, offered for transfer
        self._reported_bad: set[str] = set()
        self._stamps: dict[str, datetime] = {}  # source time of the latest value seen per tag
        self._session: MachineSession | None = None
        self.connects = 0  # successful connects (health, tests)
        self.failures = 0  # connection attempts that failed before data flowed
        self.last_failure = ""

    # ------------------------------------------------------------------------------------------------ run loop

    async def run(self, session: MachineSession, stop: asyncio.Event) -> None:
        """Collect until ``stop`` is set: connect, read, subscribe; on any loss back off and start over."""
        self._session = session
        attempt = 0
        lost_at: float | None = None  # monotonic time the data stopped flowing, for the reconnect-gap record
        while not stop.is_set():
            link = _Link()
            try:
                await self._connected(session, stop, lost_at, link)
            except _RETRYABLE as exc:
                link.reason = link.reason or f"{type(exc).__name__}: {exc}".rstrip(": ")
            if not link.up and not stop.is_set():
                self.failures += 1
                self.last_failure = link.reason
                session.problem("connection", f"cannot connect to {self.config.endpoint}: {link.reason}")
            if link.up:
                attempt, lost_at = 0, None
                session.on_disconnected("collector stopped" if stop.is_set() else link.reason)
            if stop.is_set():
                break
            if lost_at is None:
                lost_at = time.monotonic()
            delay = self.backoff.delay(attempt, self._rng)
            attempt += 1
            log.warning(
                "machine %s: OPC UA %s (%s); retrying in %.1fs",
                self.config.machine,
                "connection lost" if link.up else "connect failed",
                link.reason,
                delay,
            )
            await sleep_or_stop(stop, delay)

    async def _connected(
        self, session: MachineSession, stop: asyncio.Event, lost_at: float | None, link: _Link
    ) -> None:
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
            session.on_connected()
            if lost_at is not None and self.connects > 1:  # a reconnect, not the first connect
                gap = time.monotonic() - lost_at
                session.record(
                    "reconnect-gap",
                    f"OPC UA {self.config.endpoint} unreachable for {gap:.1f}s; counters re-read on reconnect",
                )
            await self._deliver_full(session, client, read_limit, "connect")
            await self._transfer_previous(session, client)
            subscription = await self._subscribe(client, monitor_limit)
            await self._pump(session, client, subscription, read_limit, stop, lost)
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
            log.debug("machine %s: disconnect: %r", self.config.machine, exc)
        with contextlib.suppress(Exception):
            client.disconnect_socket()

    async def _limit(self, client: Client, node: int) -> int:
        try:
            value = await client.get_node(ua.NodeId(ua.Int32(node))).read_value()
        except (ua.UaError, TimeoutError) as exc:
            log.info(
                "machine %s: server operation limit %s unreadable (%r); chunks of %d",
                self.config.machine,
                node,
                exc,
                SAFE_CHUNK,
            )
            return SAFE_CHUNK
        return int(value) if isinstance(value, int) and value > 0 else SAFE_CHUNK

    # ----------------------------------------------------------------------------------------------- reading

    async def read_all(self, client: Client, read_limit: int) -> dict[str, int | Decimal | str | None]:
        """Every tag's current value, read in as few requests as the server's limit allows."""
        # A tag left out on this connection (its namespace is not on the server) reads as None.
        values: dict[str, int | Decimal | str | None] = {tag.name: None for tag in self.configured}
        for chunk in _chunks(self.tags, read_limit):
            params = ua.ReadParameters()
            params.TimestampsToReturn = ua.TimestampsToReturn.Both
            for tag in chunk:
                item = ua.ReadValueId()
                item.NodeId = tag.node_id
                item.AttributeId = ua.AttributeIds.Value
                params.NodesToRead.append(item)
            results = await client.uaclient.read(params)
            for tag, result in zip(chunk, results, strict=True):
                values[tag.name] = await self._value(tag, result)
        return values

    async def _value(self, tag: Tag, data_value: ua.DataValue, *, notification: bool = False) -> Any:
        """The usable value of a read or notification, or None (bad status, wrong type, or older than one seen)."""
        status, variant = data_value.StatusCode, data_value.Value
        stamp = data_value.SourceTimestamp or data_value.ServerTimestamp
        if notification and stamp is not None and tag.name in self._stamps and stamp < self._stamps[tag.name]:
            # A notification sent before the last full read but delivered after it: its value is older than what
            # the session already holds, and a counter that seems to drop would be taken for a controller reset.
            return _STALE
        if stamp is not None:
            self._stamps[tag.name] = stamp
        if status is not None and not status.is_good():
            await self._report_bad(tag, f"status {status.name}")
            return None
        try:
            value = tag_value(tag.name, variant.Value if variant is not None else None)
        except (ValueError, ArithmeticError) as exc:
            await self._report_bad(tag, str(exc))
            return None
        self._report_good(tag)
        return value

    async def _report_bad(self, tag: Tag, problem: str) -> None:
        """A node that cannot be used: named in the machine's health (until it reads again) and recorded once."""
        detail = f"{tag.named()}: {problem}"
        if self._session is not None:
            self._session.problem(f"node {tag.name}", detail)
        if tag.name in self._reported_bad:
            return
        self._reported_bad.add(tag.name)
        if self._session is not None:
            self._session.record("node-unusable", detail)
        else:
            log.warning("machine %s: %s unusable", self.config.machine, detail)

    def _report_good(self, tag: Tag) -> None:
        if tag.name in self._reported_bad:
            self._reported_bad.discard(tag.name)
            if self._session is not None:
                self._session.problem(f"node {tag.name}", None)

    async def _resolve(self, client: Client) -> None:
        """This connection's node ids: ``nsu=`` ids get the namespace index the server uses now.

        A server may renumber its namespaces when it restarts, so the array is read on every connect; a namespace
        the server does not have leaves that tag out (named in the health) and the machine's other tags work.
        """
        if not needs_namespaces(self.configured):
            return
        namespaces = await client.get_node(ua.NodeId(ua.Int32(NAMESPACE_ARRAY))).read_value()
        self.tags, problems = resolve_tags(self.configured, [str(uri) for uri in namespaces])
        self._by_node = {tag.node_id: tag for tag in self.tags}
        for tag in self.configured:
            if tag.name in problems:
                await self._report_bad(tag, problems[tag.name])

    async def _deliver_full(self, session: MachineSession, client: Client, read_limit: int, reason: str) -> None:
        values = await asyncio.wait_for(self.read_all(client, read_limit), self._request_timeout * 2)
        if "job" in values:
            self._job = values["job"]  # type: ignore[assignment]
        if values.get("energy") is not None:
            self._energy = values["energy"]  # type: ignore[assignment]
        await session.on_snapshot(Snapshot(self.config.machine, values, datetime.now(UTC), reason))

    # ------------------------------------------------------------------------------------------ subscriptions

    async def _transfer_previous(self, session: MachineSession, client: Client) -> None:
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
        log.debug("machine %s: transfer of subscription %s: %s", self.config.machine, old, status.name)
        if status.is_good():
            with contextlib.suppress(ua.UaError, TimeoutError):
                await client.delete_subscriptions([old])
            return
        session.record(
            "subscription-transfer-failed",
            f"subscription {old} could not be transferred ({status.name}); counters were re-read instead",
        )

    async def _subscribe(self, client: Client, monitor_limit: int) -> Subscription:
        interval = float(self.config.publishing_interval_ms)  # float-ok: milliseconds
        # Bounded queue; overflowing it drops the connection (so: a full re-read), never a job change.
        subscription = await client.create_subscription(
            interval, None, queue_maxsize=10_000, overflow=OverflowPolicy.DISCONNECT
        )
        self._subscription_id = subscription.subscription_id
        for chunk in _chunks(self.tags, monitor_limit):
            nodes = [client.get_node(tag.node_id) for tag in chunk]
            # queuesize 1: only the latest value matters, the counter carries the count.
            results = await subscription.subscribe_data_change(
                nodes, queuesize=1, sampling_interval=ua.Double(interval / 2)
            )
            for tag, result in zip(chunk, results, strict=True):
                if isinstance(result, ua.StatusCode):
                    await self._report_bad(tag, f"cannot be monitored ({result.name})")
        return subscription

    async def _pump(
        self,
        session: MachineSession,
        client: Client,
        subscription: Subscription,
        read_limit: int,
        stop: asyncio.Event,
        lost: asyncio.Event,
    ) -> None:
        """Turn notification bursts into snapshots until stop (return) or loss (raise); a full reading whenever
        the session asks for one (a work order scanned at the machine)."""
        stop_wait = asyncio.ensure_future(stop.wait())
        lost_wait = asyncio.ensure_future(lost.wait())
        read_wait = asyncio.ensure_future(session.read_requested.wait())
        next_event: asyncio.Future[Any] | None = None
        try:
            while True:
                if next_event is None:
                    next_event = asyncio.ensure_future(subscription.next_event())
                done, _ = await asyncio.wait({next_event, stop_wait, lost_wait, read_wait},
                                             return_when=asyncio.FIRST_COMPLETED)
                if stop_wait in done:
                    return
                if lost_wait in done:
                    raise _ConnectionLost("connection lost")
                if read_wait in done:
                    session.read_requested.clear()
                    read_wait = asyncio.ensure_future(session.read_requested.wait())
                    await self._deliver_full(session, client, read_limit, "read-requested")
                if next_event.done():
                    try:
                        events = [next_event.result(), *_drain(subscription)]
                    except StopAsyncIteration:
                        raise _ConnectionLost("subscription closed") from None
                    next_event = None
                    await self._handle(session, client, events, read_limit)
        finally:
            for waiter in (stop_wait, lost_wait, read_wait):
                waiter.cancel()
            if next_event is not None and not next_event.done():
                next_event.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await next_event

    async def _handle(self, session: MachineSession, client: Client, events: list[Any], read_limit: int) -> None:
        """One burst of notifications: latest value per tag; a job change re-reads everything at once."""
        changed: dict[str, Any] = {}
        for event in events:
            if isinstance(event, StatusChangeEvent):
                status = event.notification.Status
                if not status.is_good():
                    raise _ConnectionLost(f"subscription status {status.name}")
                continue
            if not isinstance(event, DataChangeEvent):
                continue
            tag = self._by_node.get(event.node.nodeid)
            if tag is None:
                continue
            data_value = event.data.monitored_item.Value
            value = await self._value(tag, data_value, notification=True)
            if value is _STALE:
                continue
            if value is not None or (tag.name == "job" and data_value.StatusCode.is_good()):
                changed[tag.name] = value
        if "job" in changed and changed["job"] != self._job:
            await self._deliver_full(session, client, read_limit, "job-change")
            return
        changed.pop("job", None)  # unchanged; the session keeps the job it knows
        if "energy" in changed:
            self._energy = changed["energy"]
        if not any(name in self.config.counters for name in changed):
            return  # the meter alone moved: its delta goes with the next parts
        if self._energy is not None:
            changed["energy"] = self._energy
        await session.on_snapshot(Snapshot(self.config.machine, changed, datetime.now(UTC), "change"))


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


_STALE = object()


@dataclass(slots=True)
class _Link:
    up: bool = False
    reason: str = ""


class _ConnectionLost(Exception):
    """The connection or session died under a running subscription."""


_RETRYABLE = (OSError, TimeoutError, ConnectionError, ua.UaError, _ConnectionLost, DomainError)
