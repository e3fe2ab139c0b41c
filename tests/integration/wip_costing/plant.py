"""Load SPEC's example plant into a database through the other packages' CSV importers (the same code as
``mes-bridge ledger import``, ``routing import`` and ``bom import``)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from bom.importer import import_bom
from ledger.importer import import_balances, import_items, import_locations
from routing.importer import import_operations, import_work_centers


def load_plant(engine: Engine, folder: Path) -> None:
    with engine.begin() as conn:
        import_items(conn, folder / "items.csv", actor="test")
        import_locations(conn, folder / "locations.csv", actor="test")
        import_balances(conn, folder / "balances.csv", actor="test")
        import_work_centers(conn, folder / "work_centers.csv")
        import_operations(conn, folder / "operations.csv")
        import_bom(conn, folder / "bom.csv")
