"""Waiting for a condition, the one way tests wait (never "sleep, then assert how much happened").

Timeouts are ceilings for a condition that should hold much sooner; on a loaded machine things take longer, so
every timeout is multiplied by ``MES_BRIDGE_TEST_TIMEOUT_SCALE`` (default 3). A test that waits never fails
because this host is slow today, only because the condition did not come true within a generous time, and then
the message names what it waited for.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.engine import Engine

TIMEOUT_SCALE = float(os.environ.get("MES_BRIDGE_TEST_TIMEOUT_SCALE", "3"))


def _deadline(timeout_s: float) -> tuple[float, float]:
    ceiling = timeout_s * TIMEOUT_SCALE
    return time.monotonic() + ceiling, ceiling


async def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition",
                     interval_s: float = 0.02) -> None:
    """Return as soon as ``condition()`` is true; fail naming ``what`` after ``timeout_s`` (scaled)."""
    deadline, ceiling = _deadline(timeout_s)
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {ceiling:g}s waiting for {what}")
        await asyncio.sleep(interval_s)


def wait_until_sync(condition: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition",
                    interval_s: float = 0.02) -> None:
    """``wait_until`` for threads and synchronous tests."""
    deadline, ceiling = _deadline(timeout_s)
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {ceiling:g}s waiting for {what}")
        time.sleep(interval_s)


def lock_waiters(engine: Engine) -> int:
    """How many sessions on ``engine``'s PostgreSQL database are waiting for a lock right now."""
    with engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )).scalar_one())


def wait_for_lock_waiter(engine: Engine, what: str, timeout_s: float = 30.0) -> None:
    """Wait until another session is blocked on a lock (the race a test sets up is really happening)."""
    wait_until_sync(lambda: lock_waiters(engine) > 0, timeout_s=timeout_s, what=what, interval_s=0.01)
