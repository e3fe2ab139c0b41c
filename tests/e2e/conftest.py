"""Fixtures of the API's end-to-end tests: SPEC's example plant (with WO-1 at the worked example's state) on SQLite
and PostgreSQL, served by a real ``mes-bridge serve`` process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from mes_bridge import demo
from mes_bridge.bootstrap import Services
from tests.e2e.api_server import ApiServer


def worked_example(engine: Engine) -> None:
    """The example plant, WO-1 released and SPEC's three events applied: WIP 25.71, 3 units waiting at op 30."""
    services = Services(engine)
    demo.load_plant(services, lambda _line: None)
    demo.worked_example(services, lambda _line: None)


@pytest.fixture
def plant_url(engine: Engine, db_url: str) -> str:
    """A database (SQLite and PostgreSQL) holding the worked example."""
    worked_example(engine)
    return db_url


@pytest.fixture
def api(plant_url: str) -> Iterator[ApiServer]:
    server = ApiServer(plant_url).start()
    yield server
    server.stop()


@pytest.fixture
def example_dir() -> Path:
    return demo.EXAMPLE_PLANT
