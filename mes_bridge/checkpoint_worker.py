"""Keeps the balance checkpoints (``mes_common.checkpoints``) up to date beside a process that applies events.

Why a worker and not the event path: on PostgreSQL a build must wait until every transaction that could still
hold a line id below its watermark has ended, which a writer's own transaction cannot do; and the event path
stays as it is (one transaction per batch, nothing added to it). A build every ``every`` seconds keeps the lines
an as-of question reads besides the checkpoints to those of the current day plus the last period's.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.engine import Engine

from mes_bridge.forwarder import sleep_or_stop
from wip_costing.checkpoints import refresh_all

log = logging.getLogger(__name__)
EVERY_S = 60.0  # float-ok: seconds
WAIT_S = 5.0  # float-ok: seconds


async def keep_checkpoints(engine: Engine, stop: asyncio.Event, every: float = EVERY_S) -> None:  # float-ok: s
    """Build checkpoints now and every ``every`` seconds until ``stop`` is set; a failed build is logged and
    retried at the next period (the reports stay exact meanwhile, they read more lines)."""
    while not stop.is_set():
        try:
            # A short wait for older transactions: the next period tries again, and stopping is not held up.
            for result in await asyncio.to_thread(refresh_all, engine, wait_seconds=WAIT_S):
                if result.skipped:
                    log.warning("checkpoints of %s not built: %s", result.source, result.skipped)
                elif result.days or result.corrections:
                    log.info("checkpoints of %s: %d days, %d corrections, through line %d", result.source,
                             len(result.days), result.corrections, result.through_id)
        except Exception:  # the next period tries again; the collector must keep forwarding
            log.exception("building checkpoints failed")
        await sleep_or_stop(stop, every)
