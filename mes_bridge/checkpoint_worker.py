"""Keeps the balance checkpoints (``mes_common.checkpoints``) up to date beside the processes that apply events:
``mes-bridge serve`` (one thread in the serving process, whatever ``--workers``) and an in-process
``mes-bridge collect`` (a task beside the collector).

Why a worker and not the event path: on PostgreSQL a build must wait until every transaction that could still
hold a line id below its watermark has ended, which a writer's own transaction cannot do; and the event path
stays as it is (one transaction per batch, nothing added to it). A build every ``every`` seconds keeps the lines
an as-of question reads besides the checkpoints to those of the current day plus the last period's.

One builder per database: on PostgreSQL every worker (each API host, each collector) asks for one session-level
advisory lock (``BUILDER_LOCK``) on a connection of its own and builds only while it holds it; the others keep
asking once a period, so one of them takes over when the builder's process or connection ends. Concurrent builds
would stay exact (``refresh`` serialises them per source), but would do the same work twice. On SQLite the
serving process is the one builder (the file has no other host).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import zlib
from contextlib import suppress

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from mes_bridge.forwarder import sleep_or_stop
from mes_common.db import is_postgres
from wip_costing.checkpoints import refresh_all

log = logging.getLogger(__name__)
EVERY_S = 60.0  # float-ok: seconds
WAIT_S = 5.0  # float-ok: seconds
BUILDER_LOCK = zlib.crc32(b"mes-bridge checkpoint builder")
# The builder's lock connection says who holds it (pg_stat_activity.application_name).
BUILDER_NAME = "mes-bridge checkpoint builder"


class CheckpointBuilder:
    """One period's work (``run_once``): become or stay the database's builder, then build. Not thread-safe: one
    caller at a time (the loop below)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock_conn: Connection | None = None  # PostgreSQL: the connection holding BUILDER_LOCK

    def is_builder(self) -> bool:
        """Whether this process builds: on PostgreSQL it holds (or now takes) the builder lock."""
        if not is_postgres(self.engine):
            return True
        if self._lock_conn is not None:
            try:  # the lock lives as long as the connection's session
                self._lock_conn.execute(text("SELECT 1"))
                self._lock_conn.rollback()
                return True
            except DBAPIError:
                log.warning("checkpoints: lost the builder's connection; asking for the lock again")
                self._drop()
        conn = self.engine.connect()
        who = f"{BUILDER_NAME} {socket.gethostname()}:{os.getpid()}"
        try:
            # Named before it asks, so that the lock's holder is never seen without its name (named after, a
            # watcher saw a nameless holder for a round trip); a connection that did not get it is named back.
            conn.execute(text("SELECT set_config('application_name', :n, false)"), {"n": who[:63]})
            got = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": BUILDER_LOCK}))
            if not got:
                conn.execute(text("RESET application_name"))
            conn.commit()
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        if not got:
            conn.close()
            return False
        self._lock_conn = conn
        log.info("checkpoints: this process (%s) builds them for this database", who)
        return True

    def run_once(self) -> bool:
        """Build if this process is the builder; returns whether it built. A failed build is logged (the next
        period tries again; the reports stay exact meanwhile, they read more lines)."""
        try:
            if not self.is_builder():
                return False
            # A short wait for older transactions: the next period tries again, and stopping is not held up.
            for result in refresh_all(self.engine, wait_seconds=WAIT_S):
                if result.skipped:
                    log.warning("checkpoints of %s not built: %s", result.source, result.skipped)
                elif result.days or result.corrections:
                    log.info("checkpoints of %s: %d days, %d corrections, through line %d", result.source,
                             len(result.days), result.corrections, result.through_id)
            return True
        except Exception:  # the next period tries again; the process must keep serving / forwarding
            log.exception("building checkpoints failed")
            return False

    def close(self) -> None:
        """Stop being the builder (another process takes over at its next period)."""
        if self._lock_conn is not None:
            with suppress(DBAPIError):  # when the session is gone, so is the lock
                self._lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": BUILDER_LOCK})
            self._drop()

    def _drop(self) -> None:
        conn, self._lock_conn = self._lock_conn, None
        if conn is not None:
            conn.invalidate()  # never back to the pool: its session held the lock and carries the builder's name
            conn.close()


async def keep_checkpoints(engine: Engine, stop: asyncio.Event, every: float = EVERY_S) -> None:  # float-ok: s
    """Build checkpoints now and every ``every`` seconds until ``stop`` is set, when this process is the builder."""
    builder = CheckpointBuilder(engine)
    try:
        while not stop.is_set():
            await asyncio.to_thread(builder.run_once)
            await sleep_or_stop(stop, every)
    finally:
        await asyncio.to_thread(builder.close)


class CheckpointThread:
    """``keep_checkpoints`` in a thread of a synchronous process (``mes-bridge serve`` around uvicorn)."""

    def __init__(self, engine: Engine, every: float = EVERY_S) -> None:  # float-ok: seconds
        self.builder = CheckpointBuilder(engine)
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="checkpoints", daemon=True)

    def start(self) -> CheckpointThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:  # float-ok: seconds
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.builder.run_once()
                self._stop.wait(self.every)
        finally:
            self.builder.close()
