"""Reading the released structure in bulk (issue 16): the packed PostgreSQL read equals the plain read, and the
columnar explosion and the where-used walk over it equal their line-by-line references, on small copies of the
benchmark's two shapes (deep and wide), on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from bom import bulk_read
from bom import repository as repo
from bom.explosion import explode, explode_plain
from bom.model import BomLine, BomVersion
from bom.structure import BomIndex
from bom.whereused import where_used, where_used_from
from tests.integration.bom.plant import add_raw_items
from tests.unit.bom.helpers import JAN1, bom, line

D = Decimal
RAWS = [f"RM-{n:03d}" for n in range(40)]


def _key(version: BomVersion) -> tuple[str, str]:
    return (version.item, version.revision)


def _shapes(conn: Connection) -> None:
    """FG-DEEP: 4 levels, 2 sub-assemblies per assembly, 5 raw lines each (scrap, fixed, phantom, operations
    with and without); FG-WIDE: 8 sub-assemblies x 30 raw lines. Line numbers are not insertion order for one
    version (it is saved with lines in an order the database must keep)."""
    rng = random.Random(16)
    versions: list[BomVersion] = []
    items: list[str] = list(RAWS)

    def assembly(code: str, depth: int) -> None:
        items.append(code)
        lines: list[BomLine] = []
        if depth < 3:
            for n in range(2):
                child = f"{code}.{n}"
                lines.append(line(child, "2", op=10 * (n + 1), phantom=n == 1 and depth == 2))
                assembly(child, depth + 1)
        for raw in rng.sample(RAWS, 5):
            lines.append(line(raw, str(rng.randint(1, 40) / D(4)), scrap=rng.choice(["0", "1.5", "5"]),
                              op=rng.choice([None, 10, 20]), fixed=rng.random() < 0.2))
        versions.append(bom(code, *lines))

    assembly("FG-DEEP", 0)
    items.append("FG-WIDE")
    wide = []
    for n in range(8):
        code = f"WA-{n}"
        items.append(code)
        wide.append(line(code, "1"))
        versions.append(bom(code, *(line(raw, "1") for raw in rng.sample(RAWS, 30))))
    versions.append(bom("FG-WIDE", *wide))
    add_raw_items(conn, *items)
    repo.save_boms(conn, versions)
    repo.release_boms(conn, [_key(v) for v in versions])


@pytest.fixture
def shapes(engine: Engine) -> Engine:
    with engine.begin() as conn:
        _shapes(conn)
    return engine


def test_packed_read_equals_the_plain_read(shapes: Engine) -> None:
    with shapes.connect() as conn:
        plain = sorted(bulk_read.released_plain(conn), key=_key)
        assert len(plain) == 15 + 9
        index = repo.load_index(conn)  # whichever read this database gets
        assert sorted((v for item in index.items() for v in index.versions(item)), key=_key) == plain
        if not bulk_read.uses_driver(conn):
            return
        packed = sorted(bulk_read.released_packed(conn), key=_key)
        assert packed == plain
        for fast, slow in zip(packed, plain, strict=True):
            assert [str(x) for row in fast.lines for x in row] == [str(x) for row in slow.lines for x in row]
        for item in ("FG-DEEP", "FG-WIDE", "FG-DEEP.1"):
            assert sorted(bulk_read.subtree_packed(conn, item, JAN1), key=_key) == sorted(
                bulk_read.subtree_plain(conn, item, JAN1), key=_key)
        assert bulk_read.subtree_packed(conn, "FG-DEEP", date(2025, 1, 1)) == []


@pytest.mark.parametrize("item", ["FG-DEEP", "FG-WIDE"])
def test_explosion_over_the_bulk_read_equals_the_plain_explosion(shapes: Engine, item: str) -> None:
    with shapes.connect() as conn:
        reference = explode_plain(BomIndex(bulk_read.released_plain(conn)), item, D(10), JAN1)
        sub = repo.explosion_index(conn, item, JAN1)
        full = repo.load_index(conn)
    for index in (sub, full):
        fast = explode(index, item, D(10), JAN1)
        assert fast.rows == reference.rows
        assert [str(row.qty) for row in fast.rows] == [str(row.qty) for row in reference.rows]
        assert explode(index, item, D(3), JAN1).rows == explode_plain(index, item, D(3), JAN1).rows  # warm plans
    assert len(reference.rows) == (14 + 15 * 5 if item == "FG-DEEP" else 8 + 8 * 30)


def test_where_used_over_the_bulk_read_equals_the_plain_walk(shapes: Engine) -> None:
    with shapes.connect() as conn:
        index = repo.load_index(conn)
    parents = index.parents_of(JAN1)
    for code in [*RAWS[:10], "FG-DEEP.0.1", "WA-3", "FG-DEEP"]:
        assert where_used(index, code, JAN1) == where_used_from(parents, code, D(1), 1, (code,), JAN1)


@pytest.mark.postgres
def test_a_field_holding_the_separator_is_read_the_plain_way(pg_engine: Engine) -> None:
    """Codes are printable, but a row written around the application must still read back right."""
    odd = "RM\x1fODD"
    with pg_engine.begin() as conn:
        add_raw_items(conn, "FG", "RM1")
        conn.execute(text("INSERT INTO items (code, name, uom, kind, created_at) "
                          "VALUES (:c, 'odd', 'pcs', 'raw', now())"), {"c": odd})
        repo.save_boms(conn, [bom("FG", line("RM1", "1"), line(odd, "2", scrap="1.5"))])
        repo.release_boms(conn, [("FG", "A")])
    with pg_engine.connect() as conn:
        assert bulk_read.uses_driver(conn)
        assert bulk_read.released_packed(conn) == bulk_read.released_plain(conn)
        (version,) = bulk_read.subtree_packed(conn, "FG", JAN1)
        assert [x.component for x in version.lines] == ["RM1", odd]
