"""``mes-bridge serve`` keeps the reports' checkpoints built, with exactly one builder per database: two serving
processes (one with two workers, as two API hosts would) on one PostgreSQL database; events arrive over HTTP,
the checkpoints follow; one process holds the builder's lock all along, and when it stops the other takes over
(and turns the back-dated events that arrive next into corrections). A watcher polls who holds the lock the
whole time: never two at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from mes_bridge import demo
from mes_bridge.bootstrap import Services
from mes_bridge.checkpoint_worker import BUILDER_LOCK, BUILDER_NAME
from mes_common.checkpoints import checkpoint_days, checkpoint_state
from tests.e2e.api_server import ApiServer, cli
from tests.waiting import wait_until_sync
from wip_costing import reports
from wip_costing.checkpoints import journal_corrections
from wip_costing.service import release_order
from wip_costing.tables import journal_lines

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

HOLDERS = text(
    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = :k AND a.datname = current_database()")


EVERY = {"MES_BRIDGE_CHECKPOINT_EVERY": "0.3"}  # serve builds checkpoints every 0.3 s


def serve(db_url: str, workers: int) -> ApiServer:
    """``mes-bridge serve`` building checkpoints every 0.3 s, answering /health."""
    return ApiServer(db_url, workers=workers, env=EVERY).start()


class Watcher(threading.Thread):
    """Polls the builder lock's holders until stopped; ``seen`` in order of appearance, ``most`` at once."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(daemon=True)
        self.engine, self.seen, self.most = engine, list[str](), 0
        self.done = threading.Event()

    def run(self) -> None:
        with self.engine.connect() as conn:
            while not self.done.wait(0.02):
                holders = list(conn.scalars(HOLDERS, {"k": BUILDER_LOCK}))
                conn.rollback()
                self.most = max(self.most, len(holders))
                self.seen += [h for h in holders if h not in self.seen]


def _events(prefix: str, count: int) -> list[dict[str, Any]]:
    return [{"event_id": f"{prefix}:{n}", "work_order": "WO-S", "operation": 10, "good": 1, "kwh": "0.5",
             "machine": "LASER-1", "work_center": "WC-LASER", "provenance": "sensor",
             "source_time": f"2026-11-23T0{n % 10}:{n:02d}:00Z"} for n in range(count)]


def _settled(engine: Engine) -> bool:
    """The latest journal build has looked at every line there is."""
    with engine.connect() as conn:
        newest = conn.scalar(select(func.max(journal_lines.c.id)))
        through = conn.scalar(select(checkpoint_state.c.through_id).where(checkpoint_state.c.source == "journal"))
    return through is not None and newest is not None and through >= newest


def test_serve_builds_checkpoints_with_one_builder_per_database(pg_engine: Engine) -> None:
    demo.load_plant(Services(pg_engine), lambda _line: None)
    release_order(pg_engine, "WO-S", "FG-BRACKET", Decimal(40), on=demo.RELEASE_DATE)
    db_url = pg_engine.url.render_as_string(hide_password=False)
    token = cli(db_url, "token", "create", "--role", "collector", "--machine", "LASER-1").stdout.splitlines()[-1]
    watcher = Watcher(pg_engine)
    watcher.start()
    servers = [serve(db_url, workers=2), serve(db_url, workers=1)]
    try:
        def post(server: ApiServer, events: list[dict[str, Any]]) -> None:
            answer = httpx.post(f"{server.url}/events", json=events, timeout=60,
                                headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200, answer.text
            assert {o["status"] for o in answer.json()} == {"applied"}, answer.text

        post(servers[1], _events("first", 12))
        wait_until_sync(lambda: _settled(pg_engine), 30, "a build that looked at the events sent over HTTP")
        with pg_engine.connect() as conn:
            assert datetime(2026, 11, 23).date() in set(conn.scalars(
                select(checkpoint_days.c.day).where(checkpoint_days.c.source == "journal")))
        assert len(watcher.seen) == 1
        first = watcher.seen[0]
        builder = next(s for s in servers if first.endswith(f":{s.pid}"))
        other = next(s for s in servers if s is not builder)

        builder.stop()  # the other process takes over at its next period
        wait_until_sync(lambda: len(watcher.seen) == 2, 30, "the other process to become the builder")
        assert watcher.seen[1].endswith(f":{other.pid}")
        post(other, _events("late", 8))  # back-dated into a checkpointed day: corrections
        wait_until_sync(lambda: _settled(pg_engine), 30, "the new builder to look at the late events")
    finally:
        for server in servers:
            server.stop()
        watcher.done.set()
        watcher.join(10)
    assert watcher.most == 1, f"{watcher.most} builders at once"
    assert all(name.startswith(BUILDER_NAME) for name in watcher.seen)
    with pg_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(journal_corrections)) > 0
        for when in (None, datetime(2026, 11, 23, 5, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)):
            assert reports.wip_value(conn, when, "order") == reports.wip_value_by_scan(conn, when, "order")


def test_serve_builds_checkpoints_on_sqlite(sqlite_engine: Engine) -> None:
    """SQLite: the serving process is the one builder (its thread, not each of its workers)."""
    demo.load_plant(Services(sqlite_engine), lambda _line: None)
    release_order(sqlite_engine, "WO-S", "FG-BRACKET", Decimal(40), on=demo.RELEASE_DATE)
    db_url = sqlite_engine.url.render_as_string(hide_password=False)
    token = cli(db_url, "token", "create", "--role", "collector", "--machine", "LASER-1").stdout.splitlines()[-1]
    server = serve(db_url, workers=2)
    try:
        answer = httpx.post(f"{server.url}/events", json=_events("first", 6), timeout=60,
                            headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
        wait_until_sync(lambda: _settled(sqlite_engine), 30, "a build that looked at the events sent over HTTP")
    finally:
        server.stop()
    with sqlite_engine.connect() as conn:
        when = datetime(2026, 11, 24, tzinfo=UTC)
        assert reports.wip_value(conn, when, "order") == reports.wip_value_by_scan(conn, when, "order")
