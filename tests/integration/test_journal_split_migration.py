"""Migration 0005 turns each journal line's one element into its element column and back, keeping every amount,
on SQLite and PostgreSQL; the journal stays append-only on both sides of it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError

from mes_bridge import schema
from mes_common.db import Money, UtcDateTime, make_engine, utcnow

D = Decimal
ELEMENT_COLUMNS = ("material", "setup", "labor", "machine", "energy")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[Engine]:
    """An engine on a database with no schema yet."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite+pysqlite:///{tmp_path}/migrate.db")
        yield engine
        engine.dispose()
        return
    url = make_url(request.getfixturevalue("pg_url"))
    admin = make_engine(url.set(database="postgres").render_as_string(hide_password=False),
                        isolation_level="AUTOCOMMIT")
    name = f"mesb_migrate_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(url.set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _lines(*extra: str) -> sa.TableClause:
    return sa.table("journal_lines", sa.column("id"), sa.column("entry"), sa.column("kind"),
                    sa.column("event_id"), sa.column("account"), sa.column("debit", Money()),
                    sa.column("credit", Money()), sa.column("work_order"), sa.column("operation"),
                    sa.column("provenance"), sa.column("effective_at", UtcDateTime()),
                    sa.column("recorded_at", UtcDateTime()),
                    *(sa.column(name, Money() if name in ELEMENT_COLUMNS else sa.String()) for name in extra))


def _row(entry: str, account: str, debit: str, credit: str, columns: tuple[str, ...], **extra: object
         ) -> dict[str, object]:
    """A line's values; ``columns`` not given in ``extra`` are NULL."""
    now = utcnow()
    return {"entry": entry, "kind": "transfer", "event_id": entry.split("#")[0], "account": account,
            "debit": D(debit), "credit": D(credit), "work_order": "WO-1", "operation": 10, "provenance": "sensor",
            "effective_at": now, "recorded_at": now, **dict.fromkeys(columns), **extra}


def _downgrade(engine: Engine, revision: str) -> None:
    cfg = schema.alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def _refuses_update(engine: Engine) -> bool:
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE journal_lines SET debit = debit"))
    except DBAPIError as exc:
        return "append-only" in str(exc)
    return False


def test_each_line_keeps_its_amount_and_element_through_the_migration(empty_engine: Engine) -> None:
    schema.upgrade(empty_engine, "0004")
    old = _lines("element")
    with empty_engine.begin() as conn:
        conn.execute(sa.insert(old), [
            _row("e1#1", "WIP", "4.00", "0", ("element",), element="material"),
            _row("e1#1", "RM-INV", "0", "4.00", ("element",)),
            _row("e1#2", "WIP", "0", "1.25", ("element",), element="labor"),
            _row("e1#2", "SCRAP-LOSS", "1.25", "0", ("element",), element="labor"),
        ])
    schema.upgrade(empty_engine)

    new = _lines(*ELEMENT_COLUMNS)
    with empty_engine.connect() as conn:
        rows = conn.execute(sa.select(new).order_by(new.c.id)).all()
        columns = {c["name"] for c in sa.inspect(conn).get_columns("journal_lines")}
    assert "element" not in columns and set(ELEMENT_COLUMNS) <= columns
    with empty_engine.connect() as conn:
        indexes = {i["name"] for i in sa.inspect(conn).get_indexes("journal_lines")}
        if empty_engine.dialect.name == "postgresql":
            definition = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = "
                                           "'ix_journal_lines_effective_at'")).scalar()
            assert definition is not None and "USING brin (effective_at)" in definition
    assert "ix_journal_lines_effective_at" in indexes and "ix_journal_lines_account_effective_at" not in indexes
    assert [r.id for r in rows] == [1, 2, 3, 4]
    assert [(r.account, r.debit, r.credit) for r in rows] == [
        ("WIP", D("4.00"), D("0.00")), ("RM-INV", D("0.00"), D("4.00")), ("WIP", D("0.00"), D("1.25")),
        ("SCRAP-LOSS", D("1.25"), D("0.00"))]
    assert [tuple(r._mapping[c] for c in ELEMENT_COLUMNS) for r in rows] == [
        (D("4.00"), None, None, None, None), (None,) * 5, (None, None, D("1.25"), None, None),
        (None, None, D("1.25"), None, None)]
    assert _refuses_update(empty_engine)

    # a line holding two elements goes back as two lines, one per element, with the same entry
    with empty_engine.begin() as conn:
        conn.execute(sa.insert(new), [
            _row("e2#1", "WIP", "0", "3.50", ELEMENT_COLUMNS, material=D("3.00"), energy=D("0.50")),
            _row("e2#1", "WIP", "3.50", "0", ELEMENT_COLUMNS, operation=20, material=D("3.00"), energy=D("0.50")),
        ])
    _downgrade(empty_engine, "0004")
    with empty_engine.connect() as conn:
        back = conn.execute(sa.select(old).order_by(old.c.id)).all()
        indexes = {i["name"] for i in sa.inspect(conn).get_indexes("journal_lines")}
    assert "ix_journal_lines_account_effective_at" in indexes and "ix_journal_lines_effective_at" not in indexes
    assert [(r.entry, r.account, r.debit, r.credit, r.operation, r.element) for r in back] == [
        ("e1#1", "WIP", D("4.00"), D("0.00"), 10, "material"), ("e1#1", "RM-INV", D("0.00"), D("4.00"), 10, None),
        ("e1#2", "WIP", D("0.00"), D("1.25"), 10, "labor"), ("e1#2", "SCRAP-LOSS", D("1.25"), D("0.00"), 10, "labor"),
        ("e2#1", "WIP", D("0.00"), D("3.00"), 10, "material"), ("e2#1", "WIP", D("3.00"), D("0.00"), 20, "material"),
        ("e2#1", "WIP", D("0.00"), D("0.50"), 10, "energy"), ("e2#1", "WIP", D("0.50"), D("0.00"), 20, "energy"),
    ]
    assert _refuses_update(empty_engine)
