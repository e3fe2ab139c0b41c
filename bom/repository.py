"""BOM persistence: save drafts, release, obsolete, look up versions, and the cached released structure.

Works inside the caller's connection and transaction (SQLAlchemy Core). Invariants:
- Released versions are never changed: saving the same revision again with identical content is a no-op,
  with other content a ``VersionError`` (a change is a new revision). The one exception is end-dating
  (``supersede=True``): an earlier open revision's ``valid_to`` becomes the day before the new one starts.
- A release is refused when a component is not a known item, when its window overlaps another released
  revision of the item, or when the multi-level structure would contain a cycle on any day of its window
  (the error shows the path ``A → B → C → A``).
- Releases are serialised by the row lock on the "bom" release token, and every release or obsolescence
  changes that token in the same transaction. ``released_index`` caches the released structure per token
  (reading the token before the rows), so a cached explosion is never stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Date, Integer, String, bindparam, column, delete, insert, select, table, text, update
from sqlalchemy.engine import Connection

from bom.model import BomError, BomLine, BomVersion, CycleError, VersionState
from bom.structure import BomIndex
from bom.tables import bom_lines, bom_versions
from mes_common.db import is_postgres, utcnow
from routing.repository import bump_generation, current_token
from routing.versioning import VersionError, check_no_overlap, check_transition, superseded_end

SCOPE = "bom"
_items = table("items", column("code"), column("uom"))
_new = tuple.__new__


# ---------------------------------------------------------------- reading


def _versions(conn: Connection, where: Any) -> list[BomVersion]:
    query = select(bom_versions).where(where).order_by(bom_versions.c.item, bom_versions.c.valid_from)
    rows = conn.execute(query).all()
    if not rows:
        return []
    lines = _lines_of(conn, [row.id for row in rows])
    return [
        BomVersion.trusted(row.item, row.revision, VersionState(row.state), row.valid_from, row.valid_to,
                           tuple(lines.get(row.id, ())))
        for row in rows
    ]


def _chunks(values: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def find_bom(conn: Connection, item: str, revision: str) -> BomVersion | None:
    found = _versions(conn, (bom_versions.c.item == item) & (bom_versions.c.revision == revision))
    return found[0] if found else None


def get_bom(conn: Connection, item: str, revision: str) -> BomVersion:
    """The BOM revision in any state; raises ``BomError`` naming it when there is none."""
    version = find_bom(conn, item, revision)
    if version is None:
        raise BomError(f"BOM {item} rev {revision} does not exist")
    return version


def bom_versions_of(conn: Connection, item: str) -> list[BomVersion]:
    return _versions(conn, bom_versions.c.item == item)


def effective_bom(conn: Connection, item: str, as_of: date) -> BomVersion | None:
    """The released BOM of ``item`` effective on ``as_of`` (valid_from and valid_to inclusive), or None."""
    c = bom_versions.c
    found = _versions(conn, (c.item == item) & (c.state == VersionState.RELEASED.value) & (c.valid_from <= as_of)
                      & (c.valid_to.is_(None) | (c.valid_to >= as_of)))
    return found[0] if found else None


def load_index(conn: Connection, token: str | None = None) -> BomIndex:
    """Every released version, read now (no cache)."""
    c = bom_versions.c
    rows = conn.execute(
        select(c.id, c.item, c.revision, c.valid_from, c.valid_to).where(c.state == VersionState.RELEASED.value)
    ).all()
    lines = _released_lines_raw(conn) if is_postgres(conn) else _released_lines(conn)
    versions = [
        BomVersion.trusted(item, revision, VersionState.RELEASED, valid_from, valid_to, tuple(lines.get(vid, ())))
        for vid, item, revision, valid_from, valid_to in rows
    ]
    return BomIndex(versions, token)


_RAW_LINES = (
    "SELECT l.component, l.qty_per, l.uom, l.scrap_pct, l.operation, l.phantom, l.fixed_qty, l.version_id "
    "FROM bom_lines l JOIN bom_versions v ON v.id = l.version_id WHERE v.state = 'released' "
    "ORDER BY l.version_id, l.line_no"
)


def _released_lines_raw(conn: Connection) -> dict[int, list[BomLine]]:
    """PostgreSQL: the driver's own cursor. psycopg already returns NUMERIC as Decimal, and skipping the
    result-row layer halves the time to read a 100,000-line structure (benchmarks/bom_explode.py)."""
    driver = conn.connection.driver_connection
    assert driver is not None
    lines: dict[int, list[BomLine]] = {}
    current_id = None
    current: list[BomLine] = []
    with driver.cursor() as cursor:
        cursor.execute(_RAW_LINES)
        for row in cursor:
            if row[7] != current_id:
                current_id = row[7]
                current = lines.setdefault(current_id, [])
            current.append(_new(BomLine, row[:7]))
    return lines


def _released_lines(conn: Connection) -> dict[int, list[BomLine]]:
    c = bom_versions.c
    lc = bom_lines.c
    query = (
        select(lc.version_id, lc.component, lc.qty_per, lc.uom, lc.scrap_pct, lc.operation, lc.phantom, lc.fixed_qty)
        .join(bom_versions, bom_versions.c.id == lc.version_id)
        .where(c.state == VersionState.RELEASED.value)
        .order_by(lc.version_id, lc.line_no)
    )
    lines: dict[int, list[BomLine]] = {}
    current_id = None
    current: list[BomLine] = []
    for row in conn.execute(query):
        if row[0] != current_id:
            current_id = row[0]
            current = lines.setdefault(current_id, [])
        current.append(_new(BomLine, tuple(row)[1:]))
    return lines


class BomCache:
    """The released BOM structure of one database, for the process (owned by ``wip_costing.unit_of_work.Caches``).

    Invalidation: every entry carries the release token it was read under; a token that differs from the
    current one (every release or obsolescence draws a new random token) makes the entry stale, so a cached
    structure is never served after a change. Sub-trees (for cold explosions) are bounded in number."""

    MAX_SUBTREES = 16

    def __init__(self) -> None:
        self.index: BomIndex | None = None
        self.subtrees: dict[tuple[str, date], BomIndex] = {}

    def clear(self) -> None:
        self.index = None
        self.subtrees.clear()


def released_index(conn: Connection, cache: BomCache | None = None) -> BomIndex:
    """The released structure; with ``cache``, one small query when nothing was released since it was read."""
    token = current_token(conn, SCOPE)  # before the rows: a cached snapshot is never newer-keyed than its data
    cached = cache.index if cache is not None else None
    if token is not None and cached is not None and cached.token == token:
        return cached
    index = load_index(conn, token)
    if token is not None and cache is not None:
        cache.index = index
    return index


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


def explosion_index(conn: Connection, item: str, as_of: date, cache: BomCache | None = None) -> BomIndex:
    """The released structure an explosion of ``item`` as of ``as_of`` needs, cached per release token.

    When the whole released structure is already cached it is that; otherwise only the versions reachable
    from ``item`` on that day are read, so a cold explosion reads its own sub-tree rather than every BOM of the
    plant: on PostgreSQL in one statement (``_SUBTREE_RAW``: the lines aggregated into arrays per version, so the
    driver hands over one row per version instead of one per line).
    """
    token = current_token(conn, SCOPE)
    cached = cache.index if cache is not None else None
    if token is not None and cached is not None and cached.token == token:
        return cached
    sub_key = (item, as_of)
    sub = cache.subtrees.get(sub_key) if cache is not None else None
    if token is not None and sub is not None and sub.token == token:
        return sub
    sub = BomIndex(_subtree_raw(conn, item, as_of) if _psycopg(conn) else _subtree(conn, item, as_of), token)
    if token is not None and cache is not None:
        if len(cache.subtrees) >= cache.MAX_SUBTREES:
            cache.subtrees.clear()
        cache.subtrees[sub_key] = sub
    return sub


# PostgreSQL: the versions effective on the day are hashed once (MATERIALIZED), so each level of the recursion is a
# hash join instead of an index probe per line; the lines come sorted into one array per column and version (the
# aggregates read them in the subquery's order; ``_subtree_raw`` checks ``line_no`` and sorts if it was not kept).
_EFFECTIVE = "v.state = 'released' AND v.valid_from <= %(d)s AND (v.valid_to IS NULL OR v.valid_to >= %(d)s)"
_LINE_COLUMNS = (*BomLine._fields, "line_no")
_SUBTREE_RAW = f"""
WITH RECURSIVE eff AS MATERIALIZED (SELECT v.id, v.item FROM bom_versions v WHERE {_EFFECTIVE}),
reach(id) AS (
  SELECT id FROM eff WHERE item = %(item)s
  UNION
  SELECT e.id FROM reach JOIN bom_lines l ON l.version_id = reach.id JOIN eff e ON e.item = l.component
)
SELECT v.item, v.revision, v.valid_from, v.valid_to, a.*
FROM reach JOIN bom_versions v ON v.id = reach.id
CROSS JOIN LATERAL (
  SELECT {", ".join(f"array_agg(s.{c})" for c in _LINE_COLUMNS)}
  FROM (SELECT * FROM bom_lines l WHERE l.version_id = v.id ORDER BY l.line_no) s
) a
"""


def _psycopg(conn: Connection) -> bool:
    return is_postgres(conn) and conn.dialect.driver == "psycopg"


def _subtree_raw(conn: Connection, item: str, as_of: date) -> list[BomVersion]:
    """PostgreSQL (psycopg): the reachable versions and their lines in one statement, on the driver's cursor;
    a version's lines come as one array per column (parsed by the driver in C) and are zipped into lines."""
    driver = conn.connection.driver_connection
    assert driver is not None
    make = BomLine._make
    versions = []
    # The planner cannot estimate a recursion's size (it guesses ~200,000 versions) and would JIT-compile the
    # statement for longer than it runs; JIT is turned off for the rest of this transaction, in the same round trip.
    with driver.pipeline():
        setting, cursor = driver.cursor(), driver.cursor()
        setting.execute("SELECT set_config('jit', 'off', true)")
        cursor.execute(_SUBTREE_RAW, {"item": item, "d": as_of})
    with setting, cursor:
        for code, revision, valid_from, valid_to, *arrays in cursor:
            numbers = arrays.pop()
            lines: tuple[BomLine, ...] = ()
            if numbers is not None:  # a version without lines: its arrays are NULL
                lines = tuple(map(make, zip(*arrays, strict=True)))
                if numbers != sorted(numbers):
                    lines = tuple(line for _, line in sorted(zip(numbers, lines, strict=True)))
            versions.append(BomVersion.trusted(code, revision, VersionState.RELEASED, valid_from, valid_to, lines))
    return versions


def _subtree(conn: Connection, item: str, as_of: date) -> list[BomVersion]:
    rows = conn.execute(_REACHABLE, {"item": item, "d": as_of}).all()
    lines = _lines_of(conn, [row[0] for row in rows])
    return [
        BomVersion.trusted(code, revision, VersionState.RELEASED, valid_from, valid_to, tuple(lines.get(vid, ())))
        for vid, code, revision, valid_from, valid_to in rows
    ]


def _lines_of(conn: Connection, ids: list[int]) -> dict[int, list[BomLine]]:
    c = bom_lines.c
    query = select(c.version_id, c.component, c.qty_per, c.uom, c.scrap_pct, c.operation, c.phantom, c.fixed_qty)
    lines: dict[int, list[BomLine]] = {}
    for chunk in _chunks(sorted(ids), 5000):
        for row in conn.execute(query.where(c.version_id.in_(chunk)).order_by(c.version_id, c.line_no)):
            lines.setdefault(row[0], []).append(_new(BomLine, tuple(row)[1:]))
    return lines


# ---------------------------------------------------------------- writing


def known_items(conn: Connection, codes: Iterable[str]) -> dict[str, str]:
    """code -> uom of the given codes that exist as items."""
    wanted = sorted(set(codes))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 5000):
        chunk = wanted[start:start + 5000]
        for code, uom in conn.execute(select(_items.c.code, _items.c.uom).where(_items.c.code.in_(chunk))):
            found[code] = uom
    return found


def _check_items(version: BomVersion, known: dict[str, str]) -> None:
    if version.item not in known:
        raise BomError(f"{version.what}: parent {version.item} is not a known item")
    for line in version.lines:
        if line.component not in known:
            raise BomError(f"{version.what}: component {line.component} is not a known item")


def save_boms(conn: Connection, versions: Sequence[BomVersion]) -> list[BomVersion]:
    """Store versions as drafts (replacing drafts of the same revision). Returns those that need releasing:
    a revision already released or obsolete with identical content is skipped; with other content, refused."""
    known = known_items(conn, [v.item for v in versions] + [line.component for v in versions for line in v.lines])
    to_write: list[BomVersion] = []
    for version in versions:
        _check_items(version, known)
        existing = conn.execute(
            select(bom_versions.c.id, bom_versions.c.state)
            .where(bom_versions.c.item == version.item, bom_versions.c.revision == version.revision)
        ).first()
        if existing is not None and existing.state != VersionState.DRAFT.value:
            if get_bom(conn, version.item, version.revision).same_content(version):
                continue
            raise VersionError(
                f"{version.what} is {existing.state} and cannot change; save the change as a new revision"
            )
        if existing is not None:
            conn.execute(delete(bom_lines).where(bom_lines.c.version_id == existing.id))
            conn.execute(delete(bom_versions).where(bom_versions.c.id == existing.id))
        to_write.append(version)
    now = utcnow()
    for version in to_write:
        version_id = conn.execute(
            insert(bom_versions).values(
                item=version.item, revision=version.revision, state=VersionState.DRAFT.value,
                valid_from=version.valid_from, valid_to=version.valid_to, created_at=now,
            ).returning(bom_versions.c.id)
        ).scalar_one()
        if version.lines:
            conn.execute(insert(bom_lines), [
                {"version_id": version_id, "line_no": n, "component": line.component, "qty_per": line.qty_per,
                 "uom": line.uom, "scrap_pct": line.scrap_pct, "operation": line.operation,
                 "phantom": line.phantom, "fixed_qty": line.fixed_qty}
                for n, line in enumerate(version.lines, start=1)
            ])
    return to_write


def save_bom(conn: Connection, version: BomVersion) -> bool:
    """Store one version as a draft; False when that revision is already released with identical content."""
    return bool(save_boms(conn, [version]))


def release_boms(
    conn: Connection, keys: Sequence[tuple[str, str]], *, supersede: bool = False
) -> list[BomVersion]:
    """Release the given (item, revision) drafts together, all or nothing (see the module's invariants).

    With ``supersede``, a released revision of the same item that starts earlier and is still effective when
    a new one starts is end-dated to the day before (instead of refusing the overlap)."""
    if not keys:
        return []  # nothing changes, so cached results stay valid
    bump_generation(conn, SCOPE)  # first: the row lock serialises concurrent releases
    drafts = [get_bom(conn, item, revision) for item, revision in keys]
    for draft in drafts:
        check_transition(draft.what, draft.state, VersionState.RELEASED)
    known = known_items(conn, [line.component for v in drafts for line in v.lines])
    for draft in drafts:
        _check_items_released(draft, known)
    if supersede:
        _supersede(conn, drafts)
    index = load_index(conn)
    released = [BomVersion.trusted(d.item, d.revision, VersionState.RELEASED, d.valid_from, d.valid_to, d.lines)
                for d in drafts]
    by_item: dict[str, list[tuple[str, date, date | None]]] = {}
    for version in [v for item in {d.item for d in drafts} for v in index.versions(item)] + released:
        by_item.setdefault(version.item, []).append((version.revision, version.valid_from, version.valid_to))
    for version in released:
        check_no_overlap(version.what, version.revision, version.valid_from, version.valid_to, by_item[version.item])
    check_acyclic(index.with_versions(released), released)
    now = utcnow()
    for draft in drafts:
        conn.execute(update(bom_versions)
                     .where(bom_versions.c.item == draft.item, bom_versions.c.revision == draft.revision)
                     .values(state=VersionState.RELEASED.value, released_at=now))
    bump_generation(conn, SCOPE)
    return released


def _supersede(conn: Connection, drafts: Sequence[BomVersion]) -> None:
    c = bom_versions.c
    for draft in drafts:
        for other in bom_versions_of(conn, draft.item):
            if other.state != VersionState.RELEASED:
                continue
            end = superseded_end(draft.valid_from, other.valid_from, other.valid_to)
            if end is not None:
                conn.execute(update(bom_versions).where(c.item == other.item, c.revision == other.revision)
                             .values(valid_to=end))


def _check_items_released(version: BomVersion, known: dict[str, str]) -> None:
    for line in version.lines:
        if line.component not in known:
            raise BomError(f"{version.what}: component {line.component} is not a known item")


def check_acyclic(index: BomIndex, new: Sequence[BomVersion]) -> None:
    """Refuse a cycle on any day of the new versions' windows (the structure only changes at breakpoints)."""
    if not new:
        return
    start = min(v.valid_from for v in new)
    end = None if any(v.valid_to is None for v in new) else max(v.valid_to for v in new if v.valid_to)
    for day in index.breakpoints(start, end):
        if not any(v.valid_from <= day and (v.valid_to is None or day <= v.valid_to) for v in new):
            continue
        path = index.find_cycle(day)
        if path is not None:
            raise CycleError(_starting_at_new(path, {v.item for v in new}), day)


def _starting_at_new(path: list[str], new_items: set[str]) -> list[str]:
    """Rotate a cycle ``A → B → C → A`` so it starts at an item being released (the one to fix)."""
    ring = path[:-1]
    for index, code in enumerate(ring):
        if code in new_items:
            ring = ring[index:] + ring[:index]
            break
    return [*ring, ring[0]]


def release_bom(conn: Connection, item: str, revision: str, *, supersede: bool = False) -> BomVersion:
    return release_boms(conn, [(item, revision)], supersede=supersede)[0]


def obsolete_bom(conn: Connection, item: str, revision: str) -> BomVersion:
    bump_generation(conn, SCOPE)
    version = get_bom(conn, item, revision)
    check_transition(version.what, version.state, VersionState.OBSOLETE)
    conn.execute(update(bom_versions)
                 .where(bom_versions.c.item == item, bom_versions.c.revision == revision)
                 .values(state=VersionState.OBSOLETE.value, obsoleted_at=utcnow()))
    return get_bom(conn, item, revision)
