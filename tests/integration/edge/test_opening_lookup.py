"""Earlier opening balances are found through the unique index on ``stock_moves.idempotency_key`` (a key range),
not a scan of every stock move; the range condition selects exactly what the plain ``LIKE 'prefix%'`` selects."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.engine import Engine

from ledger import bulk_import
from ledger.tables import stock_moves

KEYS = ["import:balances", "import:balances:r1:2", "import:balances-adjust:r1:3", "import:balancesZ",
        "import:balancet", "import:balance", "import:balancer:9", "import-balances:1", "importbalances:1",
        "Import:balances:1", "import:balances\u00e9", "event:E-1", "", "import:balances:r2:1", "import:items:1"]


def test_the_key_range_selects_what_like_selects(engine: Engine) -> None:
    meta = MetaData()
    keys = Table("h23_keys", meta, Column("id", Integer, primary_key=True), Column("key", String(200)))
    meta.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(insert(keys), [{"key": k} for k in KEYS])
            for prefix in ("import:balances", "import:balances:r1:", "event:"):
                ranged = set(conn.execute(select(keys.c.key).where(
                    bulk_import.key_starts_with(keys.c.key, prefix))).scalars())
                plain = set(conn.execute(select(keys.c.key).where(keys.c.key.like(f"{prefix}%"))).scalars())
                assert ranged == {k for k in KEYS if k.startswith(prefix)}, prefix
                # SQLite's LIKE ignores ASCII case ('Import:balances:1' matches there); keys are written in lower
                # case by the code, so the two agree on every key that can exist.
                assert {k for k in plain if k.startswith(prefix)} == ranged, prefix
    finally:
        meta.drop_all(engine)


def _plan(engine: Engine, where: object) -> str:
    query = select(stock_moves.c.id).where(where)  # type: ignore[arg-type]
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        return "\n".join(conn.execute(text(f"EXPLAIN {sql}")).scalars())


@pytest.mark.postgres
def test_opening_balances_are_found_through_the_key_index(pg_engine: Engine) -> None:
    key = stock_moves.c.idempotency_key
    ranged = _plan(pg_engine, bulk_import.key_starts_with(key, bulk_import.OPENING_KEY))
    assert "Index Cond: (((idempotency_key)::text >= 'import:balances'::text) AND ((idempotency_key)::text < " \
           "'import:balancet'::text))" in ranged, ranged
    # The reference: the plain LIKE cannot use the index (the database's collation is not "C"), so even with
    # sequential scans off it reads every move.
    plain = _plan(pg_engine, key.like(f"{bulk_import.OPENING_KEY}%"))
    assert "Index Cond" not in plain, plain


def test_opening_balances_are_found_through_the_key_index_on_sqlite(sqlite_engine: Engine) -> None:
    query = select(stock_moves.c.id).where(
        bulk_import.key_starts_with(stock_moves.c.idempotency_key, bulk_import.OPENING_KEY))
    sql = str(query.compile(sqlite_engine, compile_kwargs={"literal_binds": True}))
    with sqlite_engine.connect() as conn:
        plan = " ".join(str(row[-1]) for row in conn.execute(text(f"EXPLAIN QUERY PLAN {sql}")))
    assert "USING COVERING INDEX" in plan or "USING INDEX" in plan, plan
    assert "idempotency_key>? AND idempotency_key<?" in plan, plan
