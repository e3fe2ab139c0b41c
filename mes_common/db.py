"""Database plumbing shared by every package: metadata, exact column types, engines.

Invariants:
- Money and quantities are stored exactly on both databases: ``NUMERIC`` on PostgreSQL, scaled
  integers on SQLite (whose NUMERIC affinity would store binary floats). ``SUM`` stays exact on both.
- Timestamps are stored in UTC and always come back timezone-aware.
- On SQLite every transaction starts with ``BEGIN IMMEDIATE``: writers are serialised, so the
  read-check-write of a balance cannot interleave (PostgreSQL uses row locks instead).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, DateTime, MetaData, Numeric, create_engine, event, insert
from sqlalchemy.engine import Connection, Dialect, Engine, make_url
from sqlalchemy.types import TypeDecorator, TypeEngine

from mes_common.money import fmt

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class Dec(TypeDecorator[Decimal]):
    """An exact decimal with ``scale`` places: NUMERIC on PostgreSQL, scaled BIGINT on SQLite."""

    impl = Numeric
    cache_ok = True

    def __init__(self, scale: int = 6, precision: int = 24) -> None:
        super().__init__()
        self.scale = scale
        self.precision = precision
        self._quantum = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def exact(self, value: Any) -> Decimal:
        """``value`` as this column stores it: a Decimal (or int) with at most ``scale`` places, else refused
        (TypeError for anything else, ValueError for too many places) — never rounded. For writers that bypass
        the column type (COPY, array parameters)."""
        if not isinstance(value, Decimal):
            if isinstance(value, int) and not isinstance(value, bool):
                value = Decimal(value)
            else:
                raise TypeError(f"exact decimal column given {type(value).__name__} {value!r}")
        quantized = value.quantize(self._quantum)
        if quantized != value:
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        return quantized

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        quantized = self.exact(value)
        if dialect.name == "sqlite":
            return int(quantized.scaleb(self.scale))
        return quantized

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-self.scale)
        return Decimal(value)

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal


def Money() -> Dec:
    """Amounts in the currency's cents."""
    return Dec(2)


def Qty() -> Dec:
    """Quantities (pieces, kg, kWh, minutes) with six places."""
    return Dec(6)


def Rate() -> Dec:
    """Unit costs and rates with six places."""
    return Dec(6)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC; naive datetimes are refused rather than guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"timestamp column given {type(value).__name__} {value!r}")
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} (give a timezone)")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_postgres(bind: Connection | Engine) -> bool:
    return bind.dialect.name == "postgresql"


# Execution option of a connection that only reads: on SQLite its transactions begin DEFERRED (no write lock).
READ_ONLY = "mes_bridge_read_only"


class UnsupportedDatabase(ValueError):
    """A database URL this service cannot use (PostgreSQL is supported through psycopg 3 only)."""


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``: SQLite (foreign keys, WAL, ``BEGIN IMMEDIATE`` transactions for writers) or
    PostgreSQL through psycopg 3 (``postgresql+psycopg://``); any other driver is refused here, at creation."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() != "psycopg":
        raise UnsupportedDatabase(
            f"database URL {parsed.render_as_string()}: PostgreSQL is supported through psycopg 3 only "
            f"(driver {parsed.get_driver_name()!r} given); write postgresql+psycopg://...")
    if parsed.get_backend_name() not in ("postgresql", "sqlite"):
        raise UnsupportedDatabase(f"database URL {parsed.render_as_string()}: use SQLite or PostgreSQL (psycopg 3)")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control away from pysqlite so BEGIN IMMEDIATE is ours to emit.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


# COPY (PostgreSQL's bulk load) in its text format: the set-based writers' fast path.

def copy_text(value: Any) -> str:
    """One field in COPY's text format (the caller's values are str, int, Decimal, datetime or None)."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        return value
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def copy_text_memo() -> Callable[[Any], str]:
    """``copy_text``, remembering each value's text: for values that repeat through a batch (codes, times)."""
    memo: dict[Any, str] = {None: "\\N"}

    def text(value: Any) -> str:
        found = memo.get(value)
        if found is None:
            found = memo[value] = copy_text(value)
        return found

    return text


def copy_statement(table: Any, columns: Sequence[str]) -> str:
    """The COPY statement loading ``columns`` of ``table`` from COPY text."""
    return f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"


def copy_raw(raw: Any, statement: str, text: str) -> None:
    """Load ``text`` (COPY text) with ``statement`` (``copy_statement``) on the psycopg connection ``raw``."""
    with raw.cursor() as cur, cur.copy(statement) as copy:
        copy.write(text.encode())


def copy_into(conn: Connection, table: Any, columns: Sequence[str], text: str) -> None:
    raw = conn.connection.driver_connection
    assert raw is not None
    copy_raw(raw, copy_statement(table, columns), text)


def insert_rows(conn: Connection, table: Any, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) in one executemany: the path for databases without COPY
    (PostgreSQL writers send their COPY text through ``copy_into``)."""
    conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
