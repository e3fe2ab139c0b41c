"""The API's one door to the service layer: every call a route makes goes through ``ApiServices``.

Writes are commands run by their handlers through ``mes_bridge.bootstrap.Services`` (each in a fresh unit of work,
retried when it lost a race) — the same handlers the CLI runs; reads are the report queries on ``Services.read()``.
Routes never touch repositories or SQL.

``ApiServices`` owns two small caches besides the ones ``Services`` owns: token look-ups, and each order's
operations' work centers (frozen at release, so never stale). A token look-up is fresh for ``TOKEN_TTL_S`` seconds;
then, up to ``TOKEN_STALE_S``, requests still use it while one background refresh reads every stale token again
(one thread, one statement), so the tokens of 50 terminals, looked up together at start, do not all expire into
50 blocking look-ups at once; older than that, a request waits for its look-up. A revoked token stops working on
this process at once, on other processes after the next refresh: within ``TOKEN_STALE_S`` at most.

Events are applied in worker threads, at most ``writers`` at once (``apply_events_in_turn``); the others wait their
turn on the event loop. Reports that issue from the same stock balance queue on its row lock anyway: more of them
in flight only hold more threads and connections, and a token look-up or a read, which run in the default thread
pool, would wait behind them (with 50 terminals, every token's cache expiry stalled reports for seconds). 16, not
fewer: reports for the same order also queue on the order's rows before the balance, and with 8 the balance row
sat idle between holders (50 terminals without pause, 15 s: 521 reports with 8, 801 with 16, load 10-12); 16
leave 24 of the 40 pooled connections to reads.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence, Set
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import anyio
import anyio.to_thread
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import Connection, Engine

from bom import diff as bom_diff
from bom import planning, rollup, whereused
from bom import repository as bom_repo
from bom.explosion import Explosion, explode_cached
from bom.standard_cost import standard_cost
from ledger import queries as ledger_queries
from ledger import repository as ledger_repo
from ledger.model import PostedMove
from mes_bridge import health_reports, tokens
from mes_bridge.bootstrap import Services
from mes_common.db import is_postgres
from mes_common.settings import Settings
from routing import repository as routing_repo
from routing.model import RoutingVersion, WorkCenter
from wip_costing import reports, scans, terminal
from wip_costing.commands import (
    ApplyEvents,
    CloseOrder,
    DecideQuarantine,
    PostCount,
    PostIssue,
    PostReceipt,
    PostTransfer,
    RecordScan,
    ReleaseOrder,
)
from wip_costing.events import EventOutcome
from wip_costing.model import OrderSnapshot
from wip_costing.planning_feed import open_component_needs
from wip_costing.release import CloseResult

log = logging.getLogger(__name__)
TOKEN_TTL_S = 5.0  # float-ok: seconds
TOKEN_STALE_S = 2 * TOKEN_TTL_S  # float-ok: seconds
POOL_SIZE = 20  # connections kept open (opened at start-up by an app that owns its services)
WRITERS = 16  # event batches applied at once per process (see the module's docstring)
MoveCommand = PostReceipt | PostIssue | PostTransfer | DecideQuarantine


class ApiServices:
    """Built once at start-up over ``Services``."""

    def __init__(self, services: Services, *, writers: int = WRITERS) -> None:
        self.services = services
        self._writers = anyio.CapacityLimiter(writers)
        self._tokens: dict[str, tuple[float, tokens.TokenRecord | None]] = {}  # float-ok: monotonic look-up time
        self._refresh: asyncio.Task[None] | None = None
        self._tokens_lock = threading.Lock()
        self._centers: dict[str, dict[int, str]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiServices:
        # Requests run in a pool of ~40 threads: enough connections that they rarely wait for one. The pool hands
        # out the connection used last (LIFO): in turn (FIFO), a collector posting one batch after another went
        # round all 20, each time on a server process whose caches another batch had left cold (a batch of 100
        # applied in 26 ms against 23 ms on the one connection; see benchmarks/RESULTS-http.md).
        options = {} if settings.resolved_database_url().startswith("sqlite") else {
            "pool_size": POOL_SIZE, "max_overflow": 20, "pool_use_lifo": True}
        return cls(Services.from_settings(settings, **options))

    @property
    def engine(self) -> Engine:
        return self.services.engine

    def close(self) -> None:
        self.services.close()

    def warm_up(self, connections: int) -> None:
        """Open ``connections`` pooled connections now (PostgreSQL), before requests come: otherwise the first
        burst (50 terminals after a restart) opens them all at once, each a new server process, while it waits."""
        if not is_postgres(self.engine):
            return
        with ExitStack() as held:
            for _ in range(connections):
                held.enter_context(self.engine.connect())

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for report queries (the pages' dashboard reads through it)."""
        with self.services.read() as conn:
            yield conn

    # --- tokens ---------------------------------------------------------------------------------

    def cached_token(self, secret: str) -> tuple[bool, tokens.TokenRecord | None]:
        """(True, the record or None) when a look-up of ``secret`` is in the cache and not older than
        ``TOKEN_STALE_S``, else (False, None): no I/O, so the event loop may call it. A stale one (older than
        ``TOKEN_TTL_S``) is answered too, and a refresh of every stale look-up started (on the running loop)."""
        now = time.monotonic()
        with self._tokens_lock:
            cached = self._tokens.get(secret)
        if cached is None or now - cached[0] >= TOKEN_STALE_S:
            return False, None
        if now - cached[0] >= TOKEN_TTL_S and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.get_running_loop().create_task(self._refresh_stale())
        return True, cached[1]

    async def _refresh_stale(self) -> None:
        try:
            await run_in_threadpool(self.refresh_stale_tokens)
        except Exception:  # the database is away: the stale look-ups expire, then requests look up themselves
            log.warning("token refresh failed", exc_info=True)

    def refresh_stale_tokens(self) -> int:
        """Look up again every cached token older than ``TOKEN_TTL_S`` (one statement); how many."""
        now = time.monotonic()
        with self._tokens_lock:
            stale = [secret for secret, (at, _r) in self._tokens.items() if now - at >= TOKEN_TTL_S]
        if not stale:
            return 0
        with self.read() as conn:
            found = tokens.find_tokens(conn, stale)
        with self._tokens_lock:
            self._tokens.update((secret, (now, record)) for secret, record in found.items())
        return len(found)

    def find_token(self, secret: str) -> tokens.TokenRecord | None:
        """The live token with this secret (a fresh look-up, kept in the cache), or None."""
        now = time.monotonic()
        with self.read() as conn:
            found = tokens.find_token(conn, secret)
        with self._tokens_lock:
            if len(self._tokens) > 10_000:
                self._tokens.clear()
            self._tokens[secret] = (now, found)
        return found

    def create_token(self, role: str, work_centers: Sequence[str], machines: Sequence[str],
                     name: str | None) -> tuple[str, tokens.TokenRecord]:
        with self.services.uow() as uow:
            made = tokens.create_token(uow.conn, role, work_centers=tuple(work_centers), machines=tuple(machines),
                                       name=name)
            uow.commit()
        return made

    def list_tokens(self) -> list[tokens.TokenRecord]:
        with self.read() as conn:
            return tokens.list_tokens(conn)

    def revoke_token(self, token_id: int) -> tokens.TokenRecord:
        with self.services.uow() as uow:
            record = tokens.revoke_token(uow.conn, token_id)
            uow.commit()
        with self._tokens_lock:
            self._tokens.clear()
        return record

    # --- events, work orders, scans -------------------------------------------------------------

    def apply_events(self, events: Sequence[Any]) -> list[EventOutcome]:
        outcomes: list[EventOutcome] = self.services.handle(ApplyEvents(list(events)))
        return outcomes

    async def apply_events_in_turn(self, events: Sequence[Any]) -> list[EventOutcome]:
        """``apply_events`` in a worker thread, at most ``writers`` batches at once (the rest wait their turn)."""
        return await anyio.to_thread.run_sync(self.apply_events, events, limiter=self._writers)

    def release_order(self, order_id: str, item: str, qty: Decimal, *, on: date | None, due_date: date | None,
                      receiving_location: str | None, serials: Sequence[str]) -> OrderSnapshot:
        snapshot: OrderSnapshot = self.services.handle(
            ReleaseOrder(order_id, item, qty, on, due_date, receiving_location, tuple(serials)))
        return snapshot

    def close_order(self, order_id: str) -> CloseResult:
        result: CloseResult = self.services.handle(CloseOrder(order_id))
        return result

    def order_view(self, order_id: str) -> dict[str, Any] | None:
        with self.read() as conn:
            return reports.order_view(conn, order_id)

    def list_problems(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        with self.read() as conn:
            return reports.list_problems(conn, status, limit, newest_first=True)

    def record_scan(self, machine: str, work_order: str, operator: str | None) -> scans.Scan:
        scan: scans.Scan = self.services.handle(RecordScan(machine, work_order, operator))
        return scan

    def current_scans(self, machines: Sequence[str]) -> dict[str, str]:
        with self.read() as conn:
            return scans.current_scans(conn, machines)

    def machine_work_center(self, machine: str) -> str | None:
        centers = self.work_centers()
        return next((wc.code for wc in centers.values() if machine in wc.machines), None)

    def cached_operation_centers(self, order_id: str) -> dict[int, str] | None:
        """``operation_centers`` if already known (no I/O, so the event loop may call it)."""
        return self._centers.get(order_id)

    def operation_centers(self, order_id: str) -> dict[int, str] | None:
        found = self._centers.get(order_id)
        if found is None:
            with self.read() as conn:
                found = terminal.operation_centers(conn, order_id, self.services.caches.snapshots)
            if found is None:
                return None
            if len(self._centers) > 100_000:
                self._centers.clear()
            self._centers[order_id] = found
        return found

    def scan_view(self, barcode: str, work_centers: Set[str] | None) -> dict[str, Any]:
        with self.read() as conn:
            return terminal.scan_view(conn, barcode, work_centers, self.services.caches.snapshots)

    # --- reports --------------------------------------------------------------------------------

    def wip_value(self, as_of: datetime | None, by: str) -> dict[str, Any]:
        with self.read() as conn:
            return reports.wip_value(conn, as_of, by).to_json()

    def journal_lines(self, start: datetime | None, end: datetime | None, limit: int | None
                      ) -> list[dict[str, Any]]:
        with self.read() as conn:
            lines = reports.journal_lines_between(conn, start, end)
            return [line for _, line in zip(range(limit), lines, strict=False)] if limit else list(lines)

    # --- ledger ---------------------------------------------------------------------------------

    def onhand(self, item: str | None, location: str | None, as_of: datetime | None) -> dict[str, Any]:
        with self.read() as conn:
            return ledger_queries.onhand_json(ledger_queries.onhand(conn, item, location, as_of))

    def moves(self, item: str | None, reference: str | None, limit: int) -> list[PostedMove]:
        with self.read() as conn:
            return ledger_queries.list_moves(conn, item=item, reference=reference, limit=limit)

    def post_move(self, command: MoveCommand) -> PostedMove:
        move: PostedMove = self.services.handle(command)
        return move

    def post_count(self, command: PostCount) -> PostedMove | None:
        """The adjustment a count calls for; None when the stock is as counted."""
        move: PostedMove | None = self.services.handle(command)
        return move

    # --- BOM and routing ------------------------------------------------------------------------

    def explode(self, item: str, qty: Decimal, as_of: date) -> Explosion:
        with self.read() as conn:
            index = bom_repo.explosion_index(conn, item, as_of, self.services.caches.bom)
        return explode_cached(index, item, qty, as_of)

    def where_used(self, item: str, as_of: date) -> list[whereused.WhereUsedRow]:
        with self.read() as conn:
            index = bom_repo.released_index(conn, self.services.caches.bom)
        return whereused.where_used(index, item, as_of)

    def bom_diff(self, item: str, rev_a: str, rev_b: str) -> bom_diff.BomDiff:
        with self.read() as conn:
            return bom_diff.diff(bom_repo.get_bom(conn, item, rev_a), bom_repo.get_bom(conn, item, rev_b))

    def rollup(self, item: str, as_of: date, qty: Decimal) -> rollup.CostRollup:
        caches = self.services.caches
        with self.read() as conn:
            return standard_cost(conn, item, as_of, qty, boms_cache=caches.bom, routings_cache=caches.routings)

    def net_requirements(self, plan: Sequence[planning.PlanRow], open_needs: Mapping[str, Decimal],
                         include_wip: bool) -> list[planning.Requirement]:
        with self.read() as conn:
            needs = open_component_needs(conn, self.services.caches.snapshots) if include_wip else {}
            for code, qty in open_needs.items():
                needs[code] = needs.get(code, Decimal(0)) + qty
            result = planning.net_requirements(bom_repo.released_index(conn, self.services.caches.bom), plan,
                                               ledger_queries.onhand_by_item(conn), needs)
            uoms = {code: item.uom for code, item in
                    ledger_repo.get_items(conn, [r.component for r in result if not r.uom]).items()}
        return [r if r.uom else replace(r, uom=uoms.get(r.component, "")) for r in result]

    def routing(self, item: str, as_of: date, revision: str | None) -> RoutingVersion | None:
        with self.read() as conn:
            if revision is not None:
                return routing_repo.find_routing(conn, item, revision)
            return routing_repo.effective_routing(conn, item, as_of)

    def work_centers(self) -> dict[str, WorkCenter]:
        with self.read() as conn:
            return routing_repo.work_centers(conn)

    # --- collectors -----------------------------------------------------------------------------

    def record_health(self, reports_: Sequence[health_reports.MachineHealth], reported_by: str) -> None:
        with self.services.uow() as uow:
            health_reports.record_health(uow.conn, reports_, reported_by)
            uow.commit()

    def machine_health(self) -> list[dict[str, Any]]:
        with self.read() as conn:
            return health_reports.machine_health(conn)
