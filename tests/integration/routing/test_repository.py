"""Routing persistence on SQLite and PostgreSQL: round trip, release rules, supersede, work centers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy.engine import Engine

from routing import repository as repo
from routing.model import Operation, RoutingError, RoutingVersion, VersionState, WorkCenter
from routing.versioning import VersionError
from tests.integration.bom.plant import add_raw_items

D = Decimal
JAN1 = date(2026, 1, 1)


@pytest.fixture
def master(engine: Engine) -> Engine:
    with engine.begin() as conn:
        add_raw_items(conn, "FG")
        repo.save_work_centers(conn, [
            WorkCenter("WC-A", "A", D("30"), D("60"), D("0.2"), "CC-1", ("M-1", "M-2"), ("T-1",)),
            WorkCenter("WC-B", "B", D("30"), D("48"), D("0.2"), "CC-2"),
        ])
    return engine


def routing(rev: str = "A", valid_from: date = JAN1, valid_to: date | None = None) -> RoutingVersion:
    return RoutingVersion("FG", rev, VersionState.DRAFT, valid_from, valid_to, (
        Operation(10, "WC-A", D("5.5"), D(2), D("0.5"), D(100), "cut"),
        Operation(20, "WC-B", D(0), D(1), D("0.3"), D("97.5"), "bend", None, (10,)),
        Operation(30, "WC-A", D(0), D(3), D("0.1"), D(100), "inspect", 10),
    ))


def test_round_trip_and_release(master: Engine) -> None:
    with master.begin() as conn:
        assert repo.save_routing(conn, routing())
        assert repo.get_routing(conn, "FG", "A").operations == routing().operations
        assert repo.effective_routing(conn, "FG", JAN1) is None  # a draft is not effective
        released = repo.release_routing(conn, "FG", "A")
        assert released.state == VersionState.RELEASED
        assert repo.effective_routing(conn, "FG", JAN1) == released
        assert not repo.save_routing(conn, routing())  # identical: nothing to do
        with pytest.raises(VersionError, match="routing FG rev A is released and cannot change"):
            repo.save_routing(conn, routing(valid_to=date(2026, 6, 30)))


def test_overlap_refused_unless_superseding(master: Engine) -> None:
    with master.begin() as conn:
        repo.save_routing(conn, routing())
        repo.release_routing(conn, "FG", "A")
        repo.save_routing(conn, routing("B", date(2026, 7, 1)))
        overlap = r"routing FG rev B: window 2026-07-01\.\.open overlaps released revision A"
        with pytest.raises(VersionError, match=overlap):
            repo.release_routing(conn, "FG", "B")
        repo.release_routing(conn, "FG", "B", supersede=True)
        assert repo.get_routing(conn, "FG", "A").valid_to == date(2026, 6, 30)
        assert repo.effective_routing(conn, "FG", date(2026, 6, 30)).revision == "A"  # type: ignore[union-attr]
        assert repo.effective_routing(conn, "FG", date(2026, 7, 1)).revision == "B"  # type: ignore[union-attr]
        repo.obsolete_routing(conn, "FG", "B")
        assert repo.effective_routing(conn, "FG", date(2026, 7, 1)) is None


def test_unknown_work_center_and_missing_revision(master: Engine) -> None:
    bad = RoutingVersion("FG", "X", VersionState.DRAFT, JAN1, None, (Operation(10, "WC-NOPE"),))
    with master.begin() as conn:
        with pytest.raises(RoutingError, match="routing FG rev X: operation 10 names unknown work center WC-NOPE"):
            repo.save_routing(conn, bad)
        with pytest.raises(RoutingError, match="routing FG rev Q does not exist"):
            repo.get_routing(conn, "FG", "Q")


def test_work_centers_update_in_place_and_keep_machines_and_terminals(master: Engine) -> None:
    with master.begin() as conn:
        assert repo.work_centers(conn, ["WC-A"])["WC-A"].machines == ("M-1", "M-2")
        changes = repo.save_work_centers(conn, [WorkCenter("WC-A", "A2", D("31"), D("60"), D("0.25"), "CC-1",
                                                           ("M-3",))], effective=date(2026, 12, 1))
        centers = repo.work_centers(conn)
        then = repo.work_centers(conn, as_of=date(2026, 11, 30))
    assert changes == [
        "work center WC-A: name, cost center or supply location changed",
        "work center WC-A: rates from 2026-12-01: labor 30 -> 31, machine 60, energy 0.2 -> 0.25 (orders released "
        "before keep theirs)",
        "machine M-3 linked to WC-A"]
    assert set(centers) == {"WC-A", "WC-B"}
    # Machines and terminals the import does not mention stay linked.
    assert (centers["WC-A"].name, centers["WC-A"].labor_rate, centers["WC-A"].machines) == (
        "A2", D(31), ("M-1", "M-2", "M-3"))
    assert centers["WC-A"].terminals == ("T-1",)
    assert (then["WC-A"].labor_rate, then["WC-A"].energy_tariff) == (D(30), D("0.2"))
