"""Commands: what a caller (CLI, API, collectors' forwarder, demo) asks the service to do, as plain frozen
dataclasses, one per use case; ``wip_costing.handlers.handle`` runs each in a unit of work.

The ledger's commands live in ``ledger.commands`` and are re-exported here, so a caller finds every command in
one place. Values are already parsed (``Decimal``, ``date``); parsing a user's text is the caller's job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from ledger.commands import (
    DecideQuarantine,
    ImportBalances,
    ImportCsv,
    ImportItems,
    ImportLocations,
    PostCount,
    PostIssue,
    PostReceipt,
    PostTransfer,
    ReverseMove,
)
from wip_costing.events import OperationEvent

__all__ = [
    "ApplyEvents", "CloseOrder", "DecideQuarantine", "ImportBalances", "ImportBom", "ImportItems", "ImportLocations",
    "ImportOperations", "ImportWorkCenters", "ObsoleteBom", "PostCount", "PostIssue", "PostReceipt", "PostTransfer",
    "RecordScan", "ReleaseOrder", "ReverseMove",
]


@dataclass(frozen=True)
class ApplyEvents:
    """Operation events, parsed or as received (a malformed one is rejected and stored with its payload)."""

    events: Sequence[OperationEvent | Mapping[str, Any] | Any]


@dataclass(frozen=True)
class ReleaseOrder:
    order_id: str
    item: str
    qty: Decimal
    on: date | None = None  # effectivity date of the BOM and routing; default today (UTC)
    due_date: date | None = None
    receiving_location: str | None = None
    serials: tuple[str, ...] = ()


@dataclass(frozen=True)
class CloseOrder:
    """Close an order: its residue goes to variance accounts by cause. An order with units still waiting is
    refused (the refusal says what value would go to variance) unless ``force``: then they are written off."""

    order_id: str
    force: bool = False


@dataclass(frozen=True)
class RecordScan:
    machine: str
    work_order: str
    operator: str | None = None
    terminal: str | None = None
    at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class ImportBom(ImportCsv):
    supersede: bool = False


@dataclass(frozen=True, kw_only=True)
class ImportWorkCenters(ImportCsv):
    effective: date | None = None  # changed rates apply from this date (default today)


@dataclass(frozen=True, kw_only=True)
class ImportOperations(ImportCsv):
    supersede: bool = False


@dataclass(frozen=True)
class ObsoleteBom:
    item: str
    revision: str
