"""Master data of the ledger: items and locations (created, never changed by the ledger), and the checks a
posting makes against them (known codes; quarantine moves between the right kinds of location).

Invariant: ``locations.seq`` follows creation order, so ``default_location(kind)`` is "the first one created".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import literal, select, union_all
from sqlalchemy.engine import Connection

from ledger.model import (
    InvalidMove,
    Item,
    ItemKind,
    Location,
    LocationKind,
    MoveKind,
    MoveRequest,
    UnknownItem,
    UnknownLocation,
)
from ledger.tables import items, locations
from ledger.units import check_unit
from mes_common.db import utcnow
from mes_common.errors import DomainError


def add_items(conn: Connection, new_items: Iterable[Item], *, actor: str = "system", source: str = "") -> int:
    """Insert items (codes must be new); returns how many."""
    rows = [
        {"code": i.code, "name": i.name, "uom": i.uom, "kind": str(i.kind), "created_by": actor, "source": source}
        for i in new_items
    ]
    if rows:
        conn.execute(items.insert().values(created_at=utcnow()), rows)
    return len(rows)


def add_locations(
    conn: Connection, new_locations: Iterable[Location], *, actor: str = "system", source: str = ""
) -> int:
    """Insert locations in the given order (that order is their creation sequence); returns how many."""
    rows = [
        {"code": loc.code, "name": loc.name, "kind": str(loc.kind), "created_by": actor, "source": source}
        for loc in new_locations
    ]
    # One statement per row: the creation sequence must follow the given order on every database.
    for row in rows:
        conn.execute(locations.insert().values(created_at=utcnow(), **row))
    return len(rows)


def get_items(conn: Connection, codes: Iterable[str] | None = None) -> dict[str, Item]:
    """Items by code (only those that exist; every item when ``codes`` is None)."""
    query = select(items.c.code, items.c.name, items.c.uom, items.c.kind)
    if codes is not None:
        wanted = sorted(set(codes))
        if not wanted:
            return {}
        query = query.where(items.c.code.in_(wanted))
    return {r.code: Item(r.code, r.name, r.uom, ItemKind(r.kind)) for r in conn.execute(query)}


def get_locations(conn: Connection, codes: Iterable[str] | None = None) -> dict[str, Location]:
    """Locations by code, in creation order (only those that exist; all when ``codes`` is None)."""
    query = select(locations.c.code, locations.c.name, locations.c.kind).order_by(locations.c.seq, locations.c.code)
    if codes is not None:
        wanted = sorted(set(codes))
        if not wanted:
            return {}
        query = query.where(locations.c.code.in_(wanted))
    return {r.code: Location(r.code, r.name, LocationKind(r.kind)) for r in conn.execute(query)}


def default_location(conn: Connection, kind: LocationKind) -> str:
    """The first location created of ``kind``."""
    code = conn.execute(
        select(locations.c.code)
        .where(locations.c.kind == str(kind))
        .order_by(locations.c.seq, locations.c.code)
        .limit(1)
    ).scalar()
    if code is None:
        raise DomainError(f"no location of kind {kind} exists (import one with `mes-bridge ledger import locations`)")
    return str(code)


def check_master_data(conn: Connection, requests: Sequence[MoveRequest]) -> None:
    """Refuse unknown items or locations, and quarantine moves between the wrong kinds of location."""
    codes = sorted({c for r in requests for c in (r.from_location, r.to_location) if c is not None})
    # One round trip for both: this runs on every posting.
    found = conn.execute(
        union_all(
            select(literal("item").label("what"), items.c.code, items.c.kind, items.c.uom).where(
                items.c.code.in_(sorted({r.item for r in requests}))
            ),
            select(literal("location").label("what"), locations.c.code, locations.c.kind, literal("")).where(
                locations.c.code.in_(codes)
            ),
        )
    ).all()
    known_items = {row.code: row.uom for row in found if row.what == "item"}
    known_locations = {row.code: LocationKind(row.kind) for row in found if row.what == "location"}
    for r in requests:
        if r.item not in known_items:
            raise UnknownItem(r.item)
        check_unit(r.qty, known_items[r.item], f"{r.kind} of {r.item} ({r.idempotency_key})")
        for code in (r.from_location, r.to_location):
            if code is not None and code not in known_locations:
                raise UnknownLocation(code)
        if r.kind is not MoveKind.REVERSAL:
            _check_quarantine_rules(
                r,
                known_locations[r.from_location] if r.from_location else None,
                known_locations[r.to_location] if r.to_location else None,
            )


def _check_quarantine_rules(r: MoveRequest, src: LocationKind | None, dst: LocationKind | None) -> None:
    q = LocationKind.QUARANTINE
    what = f"{r.kind} of {r.item} ({r.idempotency_key})"
    if r.kind is MoveKind.QUARANTINE_RETURN and dst is not q:
        raise InvalidMove(f"{what}: a return goes into a quarantine location, {r.to_location} is {dst}")
    if r.kind in (MoveKind.QUARANTINE_ACCEPT, MoveKind.QUARANTINE_REJECT) and src is not q:
        raise InvalidMove(f"{what}: {r.from_location} is {src}, not a quarantine location")
    if r.kind is MoveKind.QUARANTINE_ACCEPT and dst in (q, LocationKind.SCRAP):
        raise InvalidMove(f"{what}: accepted stock goes to a usable location, {r.to_location} is {dst}")
    if r.kind is MoveKind.QUARANTINE_REJECT and dst is not None and dst is not LocationKind.SCRAP:
        raise InvalidMove(f"{what}: rejected stock goes to a scrap location, {r.to_location} is {dst}")
    if r.kind in (MoveKind.ISSUE, MoveKind.TRANSFER) and src is q:
        raise InvalidMove(
            f"{what}: stock in quarantine location {r.from_location} is held until inspected "
            "(quarantine_accept or quarantine_reject it first)"
        )
