"""Engine-level entry points for scripts, benchmarks and tests: each call runs one command's handler in a unit of
work of its own, retried when it lost a race (``unit_of_work.run``).

A long-running process (the API, the collectors, the CLI) builds one ``mes_bridge.bootstrap.Services`` instead,
which keeps the per-process caches across calls; here ``caches`` may be given for the same effect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Engine

from wip_costing import handlers
from wip_costing.commands import ApplyEvents, CloseOrder, ReleaseOrder
from wip_costing.events import EventOutcome, OperationEvent
from wip_costing.model import OrderSnapshot
from wip_costing.release import CloseResult
from wip_costing.unit_of_work import Caches, SqlUnitOfWork, run


def execute(engine: Engine, command: object, caches: Caches | None = None) -> Any:
    """``command``'s handler in a fresh unit of work on ``engine``, again when it lost a race."""
    shared = caches if caches is not None else Caches()
    return run(lambda: SqlUnitOfWork(engine, shared), lambda uow: handlers.handle(command, uow))


def apply_events(engine: Engine, events: Sequence[OperationEvent | Mapping[str, Any]],
                 caches: Caches | None = None) -> list[EventOutcome]:
    """Apply ``events`` in one transaction; one outcome per event, in order."""
    outcomes: list[EventOutcome] = execute(engine, ApplyEvents(list(events)), caches)
    return outcomes


def release_order(
    engine: Engine, order_id: str, item: str, qty: Decimal, *, on: date | None = None,
    due_date: date | None = None, receiving_location: str | None = None, serials: Sequence[str] = (),
    caches: Caches | None = None,
) -> OrderSnapshot:
    """Release a work order: freeze the BOM and routing versions effective on ``on`` (default today)."""
    snapshot: OrderSnapshot = execute(
        engine, ReleaseOrder(order_id, item, qty, on, due_date, receiving_location, tuple(serials)), caches)
    return snapshot


def close_order(engine: Engine, order_id: str, caches: Caches | None = None, *, force: bool = False) -> CloseResult:
    """Close ``order_id``: its residue goes to variance accounts (see ``wip_costing.variances``); with units
    still waiting only when ``force``d."""
    result: CloseResult = execute(engine, CloseOrder(order_id, force), caches)
    return result
