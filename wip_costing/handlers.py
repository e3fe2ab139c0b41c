"""Command handlers: one per use case, each taking its command and a unit of work, committing it, and returning
a result (never printing). ``handle(command, uow)`` dispatches, the ledger's commands included.

A handler raises ``DomainError`` for a refused command before committing anything (the unit of work rolls back);
the caller (``mes_bridge.bootstrap.Services``) runs it with ``unit_of_work.run``, which retries a transaction
that lost a race, so a handler must have no effect outside its unit of work.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bom import importer as bom_importer
from bom import repository as bom_repo
from bom.importer import BomImportResult
from bom.model import BomVersion
from ledger import handlers as ledger_handlers
from routing import importer as routing_importer
from routing.importer import ImportResult
from wip_costing.apply import apply_events_in
from wip_costing.commands import (
    ApplyEvents,
    CloseOrder,
    ImportBom,
    ImportOperations,
    ImportWorkCenters,
    ObsoleteBom,
    RecordScan,
    ReleaseOrder,
)
from wip_costing.events import EventOutcome
from wip_costing.model import OrderSnapshot
from wip_costing.release import CloseResult, close_in, release_in
from wip_costing.scans import Scan, record_scan
from wip_costing.unit_of_work import UnitOfWork


def apply_events(cmd: ApplyEvents, uow: UnitOfWork) -> list[EventOutcome]:
    """One outcome per event, in order: applied, duplicate, conflict or rejected (the last two are stored)."""
    outcomes = apply_events_in(uow, list(cmd.events))
    uow.commit()
    return outcomes


def release_order(cmd: ReleaseOrder, uow: UnitOfWork) -> OrderSnapshot:
    """Freeze the BOM and routing versions effective on ``cmd.on`` (default today) into a new order."""
    snapshot = release_in(uow.conn, cmd.order_id, cmd.item, cmd.qty, cmd.on, cmd.due_date, cmd.receiving_location,
                          cmd.serials, uow.caches)
    uow.commit()
    return snapshot


def close_order(cmd: CloseOrder, uow: UnitOfWork) -> CloseResult:
    result = close_in(uow.conn, cmd.order_id, uow.caches.snapshots, force=cmd.force)
    uow.commit()
    return result


def record_machine_scan(cmd: RecordScan, uow: UnitOfWork) -> Scan:
    scan = record_scan(uow.conn, cmd.machine, cmd.work_order, operator=cmd.operator, terminal=cmd.terminal,
                       at=cmd.at, snapshots=uow.caches.snapshots)
    uow.commit()
    return scan


def import_bom(cmd: ImportBom, uow: UnitOfWork) -> BomImportResult:
    result = bom_importer.import_bom(uow.conn, cmd.source, cmd.name, supersede=cmd.supersede)
    ledger_handlers.finish_import(cmd, uow)
    return result


def obsolete_bom(cmd: ObsoleteBom, uow: UnitOfWork) -> BomVersion:
    version = bom_repo.obsolete_bom(uow.conn, cmd.item, cmd.revision)
    uow.commit()
    return version


def import_work_centers(cmd: ImportWorkCenters, uow: UnitOfWork) -> ImportResult:
    result = routing_importer.import_work_centers(uow.conn, cmd.source, cmd.name, effective=cmd.effective)
    ledger_handlers.finish_import(cmd, uow)
    return result


def import_operations(cmd: ImportOperations, uow: UnitOfWork) -> ImportResult:
    result = routing_importer.import_operations(uow.conn, cmd.source, cmd.name, supersede=cmd.supersede)
    ledger_handlers.finish_import(cmd, uow)
    return result


HANDLERS: dict[type, Callable[[Any, UnitOfWork], Any]] = {
    ApplyEvents: apply_events,
    ReleaseOrder: release_order,
    CloseOrder: close_order,
    RecordScan: record_machine_scan,
    ImportBom: import_bom,
    ObsoleteBom: obsolete_bom,
    ImportWorkCenters: import_work_centers,
    ImportOperations: import_operations,
    **ledger_handlers.HANDLERS,
}


def handle(command: object, uow: UnitOfWork) -> Any:
    """Run ``command``'s handler in ``uow`` (the handler commits) and return its result."""
    handler = HANDLERS.get(type(command))
    if handler is None:
        raise TypeError(f"no handler for {type(command).__name__}")
    return handler(command, uow)
