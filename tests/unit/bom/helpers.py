"""Small builders for BOM unit tests."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from bom.model import BomLine, BomVersion, VersionState

JAN1 = date(2026, 1, 1)


def line(component: str, qty: str, scrap: str = "0", op: int | None = None, *, phantom: bool = False,
         fixed: bool = False, uom: str = "pcs") -> BomLine:
    return BomLine(component, Decimal(qty), uom, Decimal(scrap), op, phantom, fixed)


def bom(item: str, *lines: BomLine, rev: str = "A", valid_from: date = JAN1, valid_to: date | None = None,
        state: VersionState = VersionState.RELEASED) -> BomVersion:
    return BomVersion(item, rev, state, valid_from, valid_to, lines)
