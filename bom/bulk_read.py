"""Reading released BOM versions in bulk: the whole released structure, or the sub-tree one explosion needs.

Two ways, with the same result (tests/integration/bom/test_bulk_read.py proves them equal):
- plain (any database, the reference): SQLAlchemy Core, one row per line;
- PostgreSQL with psycopg: one statement, one row per version whose lines come as ONE text value
  (every field of every line joined by ``SEP``, in line order). ``str.split`` and slices turn it into
  columns in C, a quantity text seen before reuses its ``Decimal`` (a structure holds few distinct quantities),
  and the version keeps its lines as those columns (``LineColumns``; a ``BomLine`` per line is built only when
  something asks for ``lines``). The driver parses three values per version instead of seven per line: the
  per-line read and construction were what made a cold explosion barely faster than a recursive CTE (issue 16).

Invariant: a version's lines keep their ``line_no`` order; a version without lines has ``lines == ()``.
Codes and units are printable (``mes_common.limits``), so ``SEP`` (the ASCII unit separator) never occurs in
a field; the field count is checked anyway, and a mismatch reads the structure the plain way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Integer, String, bindparam, column, select, text
from sqlalchemy.engine import Connection

from bom.model import NO_COLUMNS, BomLine, BomVersion, LineColumns, VersionState
from bom.tables import bom_lines, bom_versions
from mes_common.db import is_postgres

SEP = "\x1f"
_TRUE = "t".__eq__  # a boolean field as concat_ws writes it
FIELDS = len(BomLine._fields)
_RELEASED = VersionState.RELEASED


def uses_driver(conn: Connection) -> bool:
    """The fast reads need PostgreSQL through psycopg (its own cursor, no result-row layer)."""
    return is_postgres(conn) and conn.dialect.driver == "psycopg"


# ---------------------------------------------------------------- plain (reference, every database)


def lines_of(conn: Connection, ids: Iterable[int]) -> dict[int, list[BomLine]]:
    """version id -> its lines in order (versions without lines are absent)."""
    c = bom_lines.c
    query = select(c.version_id, c.component, c.qty_per, c.uom, c.scrap_pct, c.operation, c.phantom, c.fixed_qty)
    lines: dict[int, list[BomLine]] = {}
    wanted = sorted(ids)
    for start in range(0, len(wanted), 5000):
        chunk = wanted[start:start + 5000]
        for row in conn.execute(query.where(c.version_id.in_(chunk)).order_by(c.version_id, c.line_no)):
            lines.setdefault(row[0], []).append(BomLine(*row[1:]))
    return lines


def released_plain(conn: Connection) -> list[BomVersion]:
    """Every released version with its lines, one row per line."""
    c = bom_versions.c
    return _released_with_lines(conn, conn.execute(
        select(c.id, c.item, c.revision, c.valid_from, c.valid_to).where(c.state == _RELEASED.value)
    ).all())


def _released_with_lines(conn: Connection, rows: Sequence[Any]) -> list[BomVersion]:
    """Released versions from (id, item, revision, valid_from, valid_to) rows, with their lines."""
    lines = lines_of(conn, [row[0] for row in rows])
    return [BomVersion.trusted(item, revision, _RELEASED, valid_from, valid_to, tuple(lines.get(vid, ())))
            for vid, item, revision, valid_from, valid_to in rows]


_REACHABLE = text("""
WITH RECURSIVE reach(id) AS (
  SELECT v.id FROM bom_versions v
  WHERE v.item = :item AND v.state = 'released' AND v.valid_from <= :d AND (v.valid_to IS NULL OR v.valid_to >= :d)
  UNION
  SELECT v.id FROM reach
  JOIN bom_lines l ON l.version_id = reach.id
  JOIN bom_versions v ON v.item = l.component
   AND v.state = 'released' AND v.valid_from <= :d AND (v.valid_to IS NULL OR v.valid_to >= :d)
)
SELECT v.id, v.item, v.revision, v.valid_from, v.valid_to FROM bom_versions v JOIN reach ON reach.id = v.id
""").bindparams(bindparam("d", type_=Date()), bindparam("item", type_=String())).columns(
    column("id", Integer()), column("item", String()), column("revision", String()), column("valid_from", Date()),
    column("valid_to", Date()),
)


def subtree_plain(conn: Connection, item: str, as_of: date) -> list[BomVersion]:
    """The released versions reachable from ``item`` on ``as_of``, with their lines."""
    return _released_with_lines(conn, conn.execute(_REACHABLE, {"item": item, "d": as_of}).all())


# ---------------------------------------------------------------- PostgreSQL through psycopg

# One text value per version: the seven fields of each line (NULL operation as ''), lines in line_no order.
_PACKED = (
    "CROSS JOIN LATERAL (SELECT count(*) AS n, string_agg(concat_ws(E'\\x1f', l.component, l.qty_per, l.uom, "
    "l.scrap_pct, coalesce(l.operation::text, ''), l.phantom, l.fixed_qty), E'\\x1f' ORDER BY l.line_no) AS packed "
    "FROM bom_lines l WHERE l.version_id = v.id) a"
)
_EFFECTIVE = "v.state = 'released' AND v.valid_from <= %(d)s AND (v.valid_to IS NULL OR v.valid_to >= %(d)s)"
# The versions effective on the day are hashed once (MATERIALIZED), so each level of the recursion is a hash join
# instead of an index probe per line.
_SUBTREE = f"""
WITH RECURSIVE eff AS MATERIALIZED (SELECT v.id, v.item FROM bom_versions v WHERE {_EFFECTIVE}),
reach(id) AS (
  SELECT id FROM eff WHERE item = %(item)s
  UNION
  SELECT e.id FROM reach JOIN bom_lines l ON l.version_id = reach.id JOIN eff e ON e.item = l.component
)
SELECT v.item, v.revision, v.valid_from, v.valid_to, a.n, a.packed
FROM reach JOIN bom_versions v ON v.id = reach.id {_PACKED}
"""
_RELEASED_ALL = f"""
SELECT v.item, v.revision, v.valid_from, v.valid_to, a.n, a.packed
FROM bom_versions v {_PACKED} WHERE v.state = 'released'
"""


class _Unpacked(Exception):
    """A packed version did not split into whole lines (a separator inside a field): read the plain way."""


def subtree_packed(conn: Connection, item: str, as_of: date) -> list[BomVersion]:
    """``subtree_plain`` in one statement on psycopg's cursor (see the module docstring)."""
    try:
        return _read_packed(conn, _SUBTREE, {"item": item, "d": as_of})
    except _Unpacked:
        return subtree_plain(conn, item, as_of)


def released_packed(conn: Connection) -> list[BomVersion]:
    """``released_plain`` in one statement on psycopg's cursor."""
    try:
        return _read_packed(conn, _RELEASED_ALL, {})
    except _Unpacked:
        return released_plain(conn)


def _read_packed(conn: Connection, query: str, params: dict[str, Any]) -> list[BomVersion]:
    driver = conn.connection.driver_connection
    assert driver is not None
    decimals: dict[str, Decimal] = {}
    numbers: dict[str, int | None] = {}
    versions = []
    # The planner cannot estimate a recursion's size (it guesses ~200,000 versions) and would JIT-compile the
    # statement for longer than it runs; JIT is turned off for the rest of this transaction, in the same round trip.
    with driver.pipeline():
        setting, cursor = driver.cursor(), driver.cursor()
        setting.execute("SELECT set_config('jit', 'off', true)")
        cursor.execute(query, params)
    with setting, cursor:
        for code, revision, valid_from, valid_to, count, packed in cursor:
            columns = _unpack(packed, count, decimals, numbers) if count else NO_COLUMNS
            versions.append(BomVersion.released_columns(code, revision, valid_from, valid_to, columns))
    return versions


def _unpack(packed: str, count: int, decimals: dict[str, Decimal], numbers: dict[str, int | None]) -> LineColumns:
    fields = packed.split(SEP)
    if len(fields) != count * FIELDS:
        raise _Unpacked(packed[:80])
    qtys, scraps, operations = fields[1::FIELDS], fields[3::FIELDS], fields[4::FIELDS]
    # Few distinct texts per structure (quantities, scrap rates, operation numbers): each is parsed once, and a
    # line takes the shared value by a dictionary look-up ('' is a line without an operation).
    new = set(qtys).union(scraps).difference(decimals)
    decimals.update({text: Decimal(text) for text in new})
    numbers.update({text: int(text) if text else None for text in set(operations).difference(numbers)})
    return LineColumns(tuple(fields[0::FIELDS]), tuple(map(decimals.__getitem__, qtys)), tuple(fields[2::FIELDS]),
                       tuple(map(decimals.__getitem__, scraps)), tuple(map(numbers.__getitem__, operations)),
                       _flags(fields[5::FIELDS], count), _flags(fields[6::FIELDS], count))


def _flags(texts: list[str], count: int) -> tuple[bool, ...]:
    if "t" not in texts:  # the usual case: no phantom (or no fixed-quantity) line in the version
        return (False,) * count
    return tuple(map(_TRUE, texts))
