"""The API's one door to the service layer: every call a route makes goes through ``ApiServices``.

Routes never touch repositories or SQL; they call these methods, which run the project's command handlers and
report queries (each write in its own transaction, retried when it lost a race). Switching the API to another
service layer is a change to this module only.

``ApiServices`` owns the engine and one cache: token look-ups, kept ``TOKEN_TTL_S`` seconds so a burst of requests
does not read the token table each time (a revoked token stops working within that time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence, Set
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection, Engine

from bom import diff as bom_diff
from bom import planning, rollup, whereused
from bom import repository as bom_repo
from bom.explosion import Explosion, explode_cached
from ledger import queries as ledger_queries
from ledger import repository as ledger_repo
from ledger import service as ledger_service
from ledger.model import BalanceKey, MoveRequest, PostedMove, UnknownItem, UnknownLocation
from mes_bridge import health_reports, tokens
from mes_common.db import make_engine
from mes_common.settings import Settings
from routing import repository as routing_repo
from routing.model import RoutingVersion, WorkCenter
from wip_costing import reports, scans, service, terminal
from wip_costing.events import EventOutcome
from wip_costing.model import OrderSnapshot
from wip_costing.planning_feed import open_component_needs
from wip_costing.release import CloseResult

TOKEN_TTL_S = 5.0  # float-ok: seconds


class ApiServices:
    """Built once at start-up; owns the engine and the token cache."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._tokens: dict[str, tuple[float, tokens.TokenRecord | None]] = {}  # float-ok: monotonic expiry
        self._tokens_lock = threading.Lock()
        # Per work order, its operations' work centers: frozen at release, so kept without expiry (bounded).
        self._centers: dict[str, dict[int, str]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiServices:
        url = settings.resolved_database_url()
        # Requests run in a pool of ~40 threads: enough connections that they rarely wait for one.
        return cls(make_engine(url) if url.startswith("sqlite") else make_engine(url, pool_size=20, max_overflow=20))

    def close(self) -> None:
        self.engine.dispose()

    def database(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for report queries (the pages' dashboard reads through it)."""
        with self.engine.connect() as conn:
            yield conn

    # --- tokens ---------------------------------------------------------------------------------

    def find_token(self, secret: str) -> tokens.TokenRecord | None:
        now = time.monotonic()
        with self._tokens_lock:
            cached = self._tokens.get(secret)
        if cached is not None and cached[0] > now:
            return cached[1]
        with self.engine.connect() as conn:
            found = tokens.find_token(conn, secret)
        with self._tokens_lock:
            if len(self._tokens) > 10_000:
                self._tokens.clear()
            self._tokens[secret] = (now + TOKEN_TTL_S, found)
        return found

    def create_token(self, role: str, work_centers: Sequence[str], machines: Sequence[str],
                     name: str | None) -> tuple[str, tokens.TokenRecord]:
        with self.engine.begin() as conn:
            return tokens.create_token(conn, role, work_centers=tuple(work_centers), machines=tuple(machines),
                                       name=name)

    def list_tokens(self) -> list[tokens.TokenRecord]:
        with self.engine.connect() as conn:
            return tokens.list_tokens(conn)

    def revoke_token(self, token_id: int) -> tokens.TokenRecord:
        with self.engine.begin() as conn:
            record = tokens.revoke_token(conn, token_id)
        with self._tokens_lock:
            self._tokens.clear()
        return record

    # --- events, work orders, scans -------------------------------------------------------------

    def apply_events(self, events: Sequence[Any]) -> list[EventOutcome]:
        return service.apply_events(self.engine, list(events))

    def release_order(self, order_id: str, item: str, qty: Decimal, *, on: date | None, due_date: date | None,
                      receiving_location: str | None, serials: Sequence[str]) -> OrderSnapshot:
        return service.release_order(self.engine, order_id, item, qty, on=on, due_date=due_date,
                                     receiving_location=receiving_location, serials=serials)

    def close_order(self, order_id: str) -> CloseResult:
        return service.close_order(self.engine, order_id)

    def order_view(self, order_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            return reports.order_view(conn, order_id)

    def list_problems(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return reports.list_problems(conn, status, limit, newest_first=True)

    def record_scan(self, machine: str, work_order: str, operator: str | None, terminal_id: str | None
                    ) -> scans.Scan:
        with self.engine.begin() as conn:
            return scans.record_scan(conn, machine, work_order, operator=operator, terminal=terminal_id)

    def current_scans(self, machines: Sequence[str]) -> dict[str, str]:
        with self.engine.connect() as conn:
            return scans.current_scans(conn, machines)

    def machine_work_center(self, machine: str) -> str | None:
        with self.engine.connect() as conn:
            centers = routing_repo.work_centers(conn)
        return next((wc.code for wc in centers.values() if machine in wc.machines), None)

    def operation_centers(self, order_id: str) -> dict[int, str] | None:
        found = self._centers.get(order_id)
        if found is None:
            with self.engine.connect() as conn:
                found = terminal.operation_centers(conn, order_id)
            if found is None:
                return None
            if len(self._centers) > 100_000:
                self._centers.clear()
            self._centers[order_id] = found
        return found

    def scan_view(self, barcode: str, work_centers: Set[str] | None) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return terminal.scan_view(conn, barcode, work_centers)

    # --- reports --------------------------------------------------------------------------------

    def wip_value(self, as_of: datetime | None, by: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return reports.wip_value(conn, as_of, by).to_json()

    def journal_lines(self, start: datetime | None, end: datetime | None, limit: int | None
                      ) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            lines = reports.journal_lines_between(conn, start, end)
            return [line for _, line in zip(range(limit), lines, strict=False)] if limit else list(lines)

    # --- ledger ---------------------------------------------------------------------------------

    def onhand(self, item: str | None, location: str | None, as_of: datetime | None) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return ledger_queries.onhand_json(ledger_queries.onhand(conn, item, location, as_of))

    def moves(self, item: str | None, reference: str | None, limit: int) -> list[PostedMove]:
        with self.engine.connect() as conn:
            return ledger_queries.list_moves(conn, item=item, reference=reference, limit=limit)

    def post_move(self, request: MoveRequest) -> PostedMove:
        with self.engine.begin() as conn:
            [move] = ledger_service.post_moves(conn, [request])
        return move

    def post_count(self, request: MoveRequest, counted: Decimal | None) -> PostedMove | None:
        """A cycle-count adjustment: ``request`` carries the difference, or ``counted`` (read against the balance
        under its lock) replaces it; None when the stock is as counted."""
        with self.engine.begin() as conn:
            if counted is not None:
                location = request.to_location or request.from_location or ""
                if request.item not in ledger_repo.get_items(conn, [request.item]):
                    raise UnknownItem(request.item)
                if location not in ledger_repo.get_locations(conn, [location]):
                    raise UnknownLocation(location)
                key = BalanceKey(request.item, location, request.lot)
                difference = counted - ledger_repo.lock_balances(conn, [key])[key].qty
                if difference == 0:
                    return None
                side = ({"to_location": location, "from_location": None} if difference > 0
                        else {"from_location": location, "to_location": None})
                request = replace(request, qty=abs(difference), **side)  # type: ignore[arg-type]
            [move] = ledger_service.post_moves(conn, [request])
        return move

    # --- BOM and routing ------------------------------------------------------------------------

    def explode(self, item: str, qty: Decimal, as_of: date) -> Explosion:
        with self.engine.connect() as conn:
            return explode_cached(bom_repo.explosion_index(conn, item, as_of), item, qty, as_of)

    def where_used(self, item: str, as_of: date) -> list[whereused.WhereUsedRow]:
        with self.engine.connect() as conn:
            return whereused.where_used(bom_repo.released_index(conn), item, as_of)

    def bom_diff(self, item: str, rev_a: str, rev_b: str) -> bom_diff.BomDiff:
        with self.engine.connect() as conn:
            return bom_diff.diff(bom_repo.get_bom(conn, item, rev_a), bom_repo.get_bom(conn, item, rev_b))

    def rollup(self, item: str, as_of: date, qty: Decimal) -> rollup.CostRollup:
        with self.engine.connect() as conn:
            return rollup.standard_cost(conn, item, as_of, qty)

    def net_requirements(self, plan: Sequence[planning.PlanRow], open_needs: Mapping[str, Decimal],
                         include_wip: bool) -> list[planning.Requirement]:
        with self.engine.connect() as conn:
            needs = open_component_needs(conn) if include_wip else {}
            for code, qty in open_needs.items():
                needs[code] = needs.get(code, Decimal(0)) + qty
            result = planning.net_requirements(bom_repo.released_index(conn), plan,
                                               ledger_queries.onhand_by_item(conn), needs)
            uoms = {code: item.uom for code, item in
                    ledger_repo.get_items(conn, [r.component for r in result if not r.uom]).items()}
        return [r if r.uom else replace(r, uom=uoms.get(r.component, "")) for r in result]

    def routing(self, item: str, as_of: date, revision: str | None) -> RoutingVersion | None:
        with self.engine.connect() as conn:
            if revision is not None:
                return routing_repo.find_routing(conn, item, revision)
            return routing_repo.effective_routing(conn, item, as_of)

    def work_centers(self) -> dict[str, WorkCenter]:
        with self.engine.connect() as conn:
            return routing_repo.work_centers(conn)

    # --- collectors -----------------------------------------------------------------------------

    def record_health(self, reports_: Sequence[health_reports.MachineHealth], reported_by: str) -> None:
        with self.engine.begin() as conn:
            health_reports.record_health(conn, reports_, reported_by)

    def machine_health(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return health_reports.machine_health(conn)
