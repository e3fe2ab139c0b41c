"""BOM persistence on SQLite and PostgreSQL: round trips, release rules, cache freshness."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bom import repository as repo
from bom.explosion import explode_cached
from bom.model import BomError, BomVersion, CycleError, VersionState
from bom.tables import bom_lines, bom_versions
from routing.versioning import VersionError
from tests.integration.bom.plant import add_raw_items
from tests.unit.bom.helpers import JAN1, bom, line

D = Decimal


@pytest.fixture
def items(engine: Engine) -> Engine:
    with engine.begin() as conn:
        add_raw_items(conn, "FG", "SA", "RM1", "RM2", "RM3")
    return engine


def release(engine: Engine, *versions: BomVersion) -> None:
    with engine.begin() as conn:
        repo.save_boms(conn, list(versions))
        repo.release_boms(conn, [(v.item, v.revision) for v in versions])


def test_round_trip_keeps_every_field_and_line_order(items: Engine) -> None:
    original = bom("FG", line("RM2", "1.5", scrap="2.5", op=20, phantom=True), line("RM1", "0.000001", fixed=True),
                   valid_to=date(2026, 12, 31), state=VersionState.DRAFT)
    with items.begin() as conn:
        assert repo.save_bom(conn, original)
        stored = repo.get_bom(conn, "FG", "A")
    assert stored == original
    release(items)  # nothing to release: no error
    with items.begin() as conn:
        released = repo.release_bom(conn, "FG", "A")
        assert released.state == VersionState.RELEASED
        assert repo.effective_bom(conn, "FG", date(2026, 12, 31)) == repo.get_bom(conn, "FG", "A")
        assert repo.effective_bom(conn, "FG", date(2027, 1, 1)) is None


def test_released_versions_are_immutable(items: Engine) -> None:
    release(items, bom("FG", line("RM1", "1")))
    with items.begin() as conn:
        assert not repo.save_bom(conn, bom("FG", line("RM1", "1"), state=VersionState.DRAFT))  # identical: no-op
        with pytest.raises(VersionError, match="BOM FG rev A is released and cannot change; save the change as a new"):
            repo.save_bom(conn, bom("FG", line("RM1", "2")))
        with pytest.raises(VersionError, match="BOM FG rev A is released; it cannot become released"):
            repo.release_bom(conn, "FG", "A")


def test_overlapping_release_is_refused_and_end_dated_one_is_accepted(items: Engine) -> None:
    release(items, bom("FG", line("RM1", "1"), valid_to=date(2026, 5, 31)))
    with items.begin() as conn:
        repo.save_bom(conn, bom("FG", line("RM2", "1"), rev="B", valid_from=date(2026, 5, 31)))
        with pytest.raises(VersionError, match=r"BOM FG rev B: window 2026-05-31\.\.open overlaps released revision A"):
            repo.release_bom(conn, "FG", "B")
    release(items, bom("FG", line("RM2", "1"), rev="B", valid_from=date(2026, 6, 1)))
    with items.begin() as conn:
        assert repo.effective_bom(conn, "FG", date(2026, 6, 1)).revision == "B"  # type: ignore[union-attr]


def test_unknown_component_is_refused_before_anything_is_written(items: Engine) -> None:
    with items.begin() as conn, pytest.raises(BomError, match="BOM FG rev A: component NOPE is not a known item"):
        repo.save_bom(conn, bom("FG", line("RM1", "1"), line("NOPE", "1")))
    with items.begin() as conn:
        assert conn.execute(select(func.count()).select_from(bom_versions)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(bom_lines)).scalar() == 0


def test_cycle_is_refused_with_its_path_and_the_transaction_rolls_back(items: Engine) -> None:
    release(items, bom("FG", line("SA", "1")), bom("SA", line("RM1", "1")))
    with pytest.raises(CycleError, match="BOM cycle as of 2026-01-01: RM1 → FG → SA → RM1"):
        release(items, bom("RM1", line("FG", "1")))
    with items.begin() as conn:
        assert repo.find_bom(conn, "RM1", "A") is None


def test_obsolete_versions_stop_being_effective(items: Engine) -> None:
    release(items, bom("FG", line("RM1", "1")))
    with items.begin() as conn:
        assert repo.obsolete_bom(conn, "FG", "A").state == VersionState.OBSOLETE
        assert repo.effective_bom(conn, "FG", JAN1) is None
        assert repo.get_bom(conn, "FG", "A").state == VersionState.OBSOLETE
        with pytest.raises(VersionError, match="is obsolete; it cannot become obsolete"):
            repo.obsolete_bom(conn, "FG", "A")
        with pytest.raises(BomError, match="BOM FG rev Z does not exist"):
            repo.get_bom(conn, "FG", "Z")


def test_cached_explosion_is_never_stale_after_a_release(items: Engine) -> None:
    release(items, bom("FG", line("SA", "2")), bom("SA", line("RM1", "1")))
    cache = repo.BomCache()
    with items.begin() as conn:
        index = repo.released_index(conn, cache)
        first = explode_cached(index, "FG", D(1), JAN1)
        assert repo.released_index(conn, cache) is index  # nothing released: same snapshot
        assert explode_cached(repo.released_index(conn, cache), "FG", D(1), JAN1) is first
        assert repo.released_index(conn) is not index  # without a cache: read now
    release(items, bom("SA", line("RM2", "3"), rev="B", valid_from=date(2025, 1, 1), valid_to=date(2025, 12, 31)))
    release(items, bom("RM3", line("RM2", "1")))
    with items.begin() as conn:
        fresh = repo.released_index(conn, cache)
        assert fresh is not index
        assert [r.component for r in explode_cached(fresh, "FG", D(1), JAN1).rows] == ["SA", "RM1"]
        repo.obsolete_bom(conn, "SA", "A")
    with items.begin() as conn:
        assert [r.component for r in explode_cached(repo.released_index(conn, cache), "FG", D(1), JAN1).rows] == ["SA"]


def test_explosion_index_reads_only_the_sub_tree_and_follows_releases(items: Engine) -> None:
    release(items, bom("FG", line("SA", "2")), bom("SA", line("RM1", "1")), bom("RM3", line("RM2", "1")))
    cache = repo.BomCache()
    with items.begin() as conn:
        sub = repo.explosion_index(conn, "FG", JAN1, cache)
        assert sorted(sub.items()) == ["FG", "SA"]
        assert repo.explosion_index(conn, "FG", JAN1, cache) is sub
        full = repo.released_index(conn, cache)
        assert explode_cached(sub, "FG", D(3), JAN1).rows == explode_cached(full, "FG", D(3), JAN1).rows
        assert repo.explosion_index(conn, "FG", JAN1, cache) is full  # the whole structure, once cached, serves all
    with items.begin() as conn:
        repo.save_bom(conn, bom("SA", line("RM2", "5"), rev="B", valid_from=date(2026, 2, 1)))
        repo.release_bom(conn, "SA", "B", supersede=True)
    cache.index = None  # only sub-trees cached: they too follow the release
    with items.begin() as conn:
        jan = repo.explosion_index(conn, "FG", JAN1, cache)
        assert [r.component for r in explode_cached(jan, "FG", D(1), JAN1).rows] == ["SA", "RM1"]
        feb = repo.explosion_index(conn, "FG", date(2026, 2, 1), cache)
        assert [r.component for r in explode_cached(feb, "FG", D(1), date(2026, 2, 1)).rows] == ["SA", "RM2"]
