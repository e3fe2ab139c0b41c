"""Ledger fixtures: an engine with the worked example's items and locations (no stock yet)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from ledger import repository as repo
from tests.integration.ledger.master_data import ITEMS, LOCATIONS


@pytest.fixture
def plant(engine: Engine) -> Iterator[Engine]:
    """``engine`` (SQLite and PostgreSQL) with master data loaded."""
    with engine.begin() as conn:
        repo.add_items(conn, ITEMS, actor="test", source="fixture")
        repo.add_locations(conn, LOCATIONS, actor="test", source="fixture")
    yield engine
