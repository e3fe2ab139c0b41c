"""Column types as the migrations created them, copied here so that a migration is frozen history: changing
``mes_common.db`` (the application's types) never changes what an old migration creates.

Each is what the application type of the same name rendered as DDL when the migrations were written:
- ``money()``: exact amounts in cents: NUMERIC(24, 2) on PostgreSQL, a scaled BIGINT (cents) on SQLite.
- ``qty()`` / ``rate()``: six places: NUMERIC(24, 6) on PostgreSQL, a scaled BIGINT (millionths) on SQLite.
- ``utc_datetime()``: TIMESTAMP WITH TIME ZONE on PostgreSQL, DATETIME on SQLite.
The scaling on SQLite is done by the application when it reads and writes; a migration that moves values only
copies or adds them in SQL, in the same scale.
"""

import sqlalchemy as sa
from sqlalchemy.types import TypeEngine


def _scaled(scale: int) -> TypeEngine:  # type: ignore[type-arg]
    return sa.Numeric(24, scale).with_variant(sa.BigInteger(), "sqlite")


def money() -> TypeEngine:  # type: ignore[type-arg]
    return _scaled(2)


def qty() -> TypeEngine:  # type: ignore[type-arg]
    return _scaled(6)


def rate() -> TypeEngine:  # type: ignore[type-arg]
    return _scaled(6)


def utc_datetime() -> TypeEngine:  # type: ignore[type-arg]
    return sa.DateTime(timezone=True)
