"""PostgreSQL is supported through psycopg 3 only: any other driver is refused when the engine is created."""

from __future__ import annotations

import pytest

from mes_common.db import UnsupportedDatabase, make_engine


@pytest.mark.parametrize("url", [
    "postgresql+psycopg2://postgres@127.0.0.1/db",
    "postgresql+asyncpg://postgres@127.0.0.1/db",
    "postgresql+pg8000://postgres@127.0.0.1/db",
])
def test_another_postgresql_driver_is_refused_at_engine_creation(url: str) -> None:
    with pytest.raises(UnsupportedDatabase, match=r"psycopg 3 only .*postgresql\+psycopg://"):
        make_engine(url)


def test_other_databases_are_refused() -> None:
    with pytest.raises(UnsupportedDatabase, match="use SQLite or PostgreSQL"):
        make_engine("mysql://root@127.0.0.1/db")


def test_psycopg_3_and_sqlite_are_accepted() -> None:
    # (a bare postgresql:// means psycopg too with this SQLAlchemy: its default PostgreSQL driver)
    for url in ("postgresql+psycopg://postgres@127.0.0.1/db", "postgresql://postgres@127.0.0.1/db", "sqlite://"):
        make_engine(url).dispose()  # no connection is opened here
