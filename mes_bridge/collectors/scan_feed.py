"""Where a collector learns which work order was last scanned at each of its machines' terminals.

``follow_scans`` asks a ``ScanFeed`` every ``interval`` seconds and hands changes to the machine sessions
(``MachineSession.scan``), which read the counters at once so the counts made before the scan stay with the
previous order. A feed that fails (database unreachable) is logged and asked again; the machines keep counting
under the order they know.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from mes_bridge.collectors.core import MachineSession
from mes_bridge.forwarder import sleep_or_stop

if TYPE_CHECKING:
    from mes_bridge.bootstrap import Services

log = logging.getLogger("mes_bridge.collectors.scans")


class ScanFeed(Protocol):
    def current(self, machines: Sequence[str]) -> Mapping[str, str]:
        """The latest work order scanned at each of ``machines`` (blocking; run in a thread)."""
        ...


class DatabaseScanFeed:
    """The scans recorded in the service's database (``wip_costing.scans``), for in-process collectors."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def current(self, machines: Sequence[str]) -> Mapping[str, str]:
        from wip_costing.scans import current_scans  # imported late: an HTTP-forwarding edge does not need it

        with self.services.read() as conn:
            return current_scans(conn, machines)


async def load_scans(feed: ScanFeed, sessions: Mapping[str, MachineSession]) -> bool:
    """Set each session's scanned order from ``feed`` before its client starts (False when the feed failed)."""
    try:
        found = await asyncio.to_thread(feed.current, sorted(sessions))
    except Exception as exc:
        log.warning("scanned work orders unavailable at start (%s: %s); asking again", type(exc).__name__, exc)
        return False
    for machine, order in found.items():
        sessions[machine].scanned_work_order = order
    return True


async def follow_scans(feed: ScanFeed, sessions: Mapping[str, MachineSession], stop: asyncio.Event,
                       interval: float = 1.0) -> None:  # float-ok: seconds
    failing = False
    while not stop.is_set():
        await sleep_or_stop(stop, interval)
        if stop.is_set():
            return
        try:
            found = await asyncio.to_thread(feed.current, sorted(sessions))
        except Exception as exc:
            if not failing:
                log.warning("scanned work orders unavailable (%s: %s); machines keep their orders",
                            type(exc).__name__, exc)
            failing = True
            continue
        if failing:
            log.info("scanned work orders available again")
        failing = False
        for machine, order in found.items():
            sessions[machine].scan(order)
