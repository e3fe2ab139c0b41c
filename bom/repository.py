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

from sqlalchemy import column, delete, insert, select, table, update
from sqlalchemy.engine import Connection

from bom import bulk_read
from bom.model import BomError, BomVersion, CycleError, VersionState
from bom.structure import BomIndex
from bom.tables import bom_lines, bom_versions
from mes_common.db import utcnow
from routing.repository import bump_generation, current_token
from routing.versioning import VersionError, check_no_overlap, check_transition, superseded_end

SCOPE = "bom"
_items = table("items", column("code"), column("uom"))


# ---------------------------------------------------------------- reading


def _versions(conn: Connection, where: Any) -> list[BomVersion]:
    query = select(bom_versions).where(where).order_by(bom_versions.c.item, bom_versions.c.valid_from)
    rows = conn.execute(query).all()
    if not rows:
        return []
    lines = bulk_read.lines_of(conn, [row.id for row in rows])
    return [
        BomVersion.trusted(row.item, row.revision, VersionState(row.state), row.valid_from, row.valid_to,
                           tuple(lines.get(row.id, ())))
        for row in rows
    ]


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
    read = bulk_read.released_packed if bulk_read.uses_driver(conn) else bulk_read.released_plain
    return BomIndex(read(conn), token)


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


def explosion_index(conn: Connection, item: str, as_of: date, cache: BomCache | None = None) -> BomIndex:
    """The released structure an explosion of ``item`` as of ``as_of`` needs, cached per release token.

    When the whole released structure is already cached it is that; otherwise only the versions reachable
    from ``item`` on that day are read, so a cold explosion reads its own sub-tree rather than every BOM of the
    plant: on PostgreSQL in one statement (``bulk_read.subtree_packed``: each version's lines packed into one text
    value, so the driver hands over one row and three values per version instead of one row per line).
    """
    token = current_token(conn, SCOPE)
    cached = cache.index if cache is not None else None
    if token is not None and cached is not None and cached.token == token:
        return cached
    sub_key = (item, as_of)
    sub = cache.subtrees.get(sub_key) if cache is not None else None
    if token is not None and sub is not None and sub.token == token:
        return sub
    read = bulk_read.subtree_packed if bulk_read.uses_driver(conn) else bulk_read.subtree_plain
    sub = BomIndex(read(conn, item, as_of), token)
    if token is not None and cache is not None:
        if len(cache.subtrees) >= cache.MAX_SUBTREES:
            cache.subtrees.clear()
        cache.subtrees[sub_key] = sub
    return sub


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
