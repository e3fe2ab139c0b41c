"""Load SPEC's example plant master data and stock through the ledger's own API (shared by BOM tests)."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

from sqlalchemy.engine import Connection

from ledger.model import Item, ItemKind, Location, LocationKind, MoveKind, MoveRequest
from ledger.repository import add_items, add_locations
from ledger.service import post_moves


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def load_items_and_locations(conn: Connection, plant: Path) -> None:
    add_items(conn, [Item(r["code"], r["name"], r["uom"], ItemKind(r["kind"])) for r in _rows(plant / "items.csv")])
    add_locations(conn, [Location(r["code"], r["name"], LocationKind(r["kind"]))
                         for r in _rows(plant / "locations.csv")])


def load_balances(conn: Connection, plant: Path) -> None:
    post_moves(conn, [
        MoveRequest(idempotency_key=f"opening:{r['item']}", kind=MoveKind.RECEIPT, item=r["item"],
                    qty=Decimal(r["qty"]), to_location=r["location"],
                    value=Decimal(r["qty"]) * Decimal(r["unit_cost"]))
        for r in _rows(plant / "balances.csv")
    ])


def add_raw_items(conn: Connection, *codes: str, uom: str = "pcs") -> None:
    add_items(conn, [Item(code, code, uom, ItemKind.RAW) for code in codes])
