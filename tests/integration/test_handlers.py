"""Every command handler, on the in-memory fake unit of work, on SQLite and on PostgreSQL, through the same
``handle`` + ``run`` the CLI, the API, the forwarder and the demo use (``mes_bridge.bootstrap.Services``)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from ledger.model import InsufficientStock, InvalidMove
from ledger.queries import onhand
from mes_bridge.bootstrap import Services
from mes_common.errors import DomainError
from tests.fake_unit_of_work import FakeDatabase
from wip_costing import reports
from wip_costing.commands import (
    ApplyEvents,
    CloseOrder,
    DecideQuarantine,
    ImportBalances,
    ImportBom,
    ImportItems,
    ImportLocations,
    ImportOperations,
    ImportWorkCenters,
    ObsoleteBom,
    PostCount,
    PostIssue,
    PostReceipt,
    PostTransfer,
    RecordScan,
    ReleaseOrder,
    ReverseMove,
)
from wip_costing.events import Status
from wip_costing.handlers import handle
from wip_costing.scans import ScanRefused
from wip_costing.unit_of_work import Caches, run

D = Decimal
DAY = date(2026, 11, 22)


@dataclass
class Bench:
    """How a test reaches the handlers: ``handle(command)`` in a fresh unit of work with retry, ``read()``."""

    handle: Callable[[object], Any]
    read: Callable[[], AbstractContextManager[Connection]]
    caches: Caches
    fake: FakeDatabase | None = None


@pytest.fixture(params=["fake", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def bench(request: pytest.FixtureRequest) -> Iterator[Bench]:
    if request.param == "fake":
        db = FakeDatabase()

        def read() -> AbstractContextManager[Connection]:
            return db.engine.begin()

        yield Bench(lambda command: run(db.uow, lambda uow: handle(command, uow)), read, db.caches, db)
        db.engine.dispose()
        return
    engine = request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "pg_engine")
    services = Services(engine)
    yield Bench(services.handle, services.read, services.caches)


def load(bench: Bench, folder: Path) -> None:
    bench.handle(ImportItems(source=folder / "items.csv", actor="test"))
    bench.handle(ImportLocations(source=(folder / "locations.csv").read_bytes(), name="locations.csv", actor="test"))
    bench.handle(ImportBalances(source=folder / "balances.csv", actor="test",
                                effective_at=datetime(2026, 1, 1, tzinfo=UTC)))
    bench.handle(ImportWorkCenters(source=folder / "work_centers.csv"))
    bench.handle(ImportOperations(source=folder / "operations.csv"))
    bench.handle(ImportBom(source=folder / "bom.csv"))


def stock(bench: Bench, item: str) -> dict[str, tuple[Decimal, Decimal]]:
    with bench.read() as conn:
        return {r.location: (r.qty, r.value) for r in onhand(conn, item) if r.qty}


def count(bench: Bench, table: str) -> int:
    with bench.read() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_the_worked_example_through_the_handlers(bench: Bench, example_plant: Path) -> None:
    load(bench, example_plant)
    snapshot = bench.handle(ReleaseOrder("WO-1", "FG-BRACKET", D(10), on=DAY))
    assert snapshot.bom_revision == "A" and [op.number for op in snapshot.operations] == [10, 20, 30]
    events = [json.loads(line) for line in (example_plant / "events.jsonl").read_text().splitlines() if line]
    outcomes = bench.handle(ApplyEvents(events))
    assert [o.status for o in outcomes] == [Status.APPLIED] * 3
    assert [o.status for o in bench.handle(ApplyEvents(events))] == [Status.DUPLICATE] * 3
    with bench.read() as conn:
        assert reports.wip_value(conn).total == D("25.71")
        assert reports.scrap_loss(conn) == D("17.14")
    assert stock(bench, "FG-BRACKET") == {"FG": (D(5), D("53.95"))}
    assert len(bench.caches.snapshots) == 1  # parsed once, kept for the next batches
    result = bench.handle(CloseOrder("WO-1", force=True))
    assert result.entry is not None and result.comparison.produced == D(5)
    with bench.read() as conn:
        assert reports.wip_value(conn).total == D(0)
        view = reports.order_view(conn, "WO-1")
    assert view is not None and view["status"] == "closed"
    late = {**events[2], "event_id": "late"}
    [rejected] = bench.handle(ApplyEvents([late]))
    assert rejected.status is Status.REJECTED and "closed" in (rejected.reason or "")


def test_a_refused_release_writes_nothing(bench: Bench, example_plant: Path) -> None:
    load(bench, example_plant)
    with pytest.raises(DomainError, match="unknown item NOPE"):
        bench.handle(ReleaseOrder("WO-9", "NOPE", D(1), on=DAY))
    bench.handle(ReleaseOrder("WO-9", "FG-BRACKET", D(1), on=DAY))
    with pytest.raises(DomainError, match="WO-9 already exists"):
        bench.handle(ReleaseOrder("WO-9", "FG-BRACKET", D(1), on=DAY))
    assert count(bench, "work_orders") == 1


def test_scans_are_recorded_or_refused_with_nothing_written(bench: Bench, example_plant: Path) -> None:
    load(bench, example_plant)
    bench.handle(ReleaseOrder("WO-1", "FG-BRACKET", D(10), on=DAY))
    scan = bench.handle(RecordScan("PRESS-1", "WO-1", operator="E-112", terminal="T-PRESS-1"))
    assert (scan.work_order, scan.operation, scan.work_center) == ("WO-1", 20, "WC-PRESS")
    with pytest.raises(ScanRefused, match="T-LASER-1 belongs to WC-LASER"):
        bench.handle(RecordScan("PRESS-1", "WO-1", terminal="T-LASER-1"))
    with pytest.raises(ScanRefused, match="machine 'NOPE' belongs to no work center"):
        bench.handle(RecordScan("NOPE", "WO-1"))
    assert count(bench, "machine_scans") == 1


def test_ledger_moves_through_the_handlers(bench: Bench, example_plant: Path) -> None:
    load(bench, example_plant)
    common = {"actor": "tester", "reason": "test"}
    received = bench.handle(PostReceipt(item="RM-STEEL", qty=D(10), to_location="STORES", unit_cost=D("4.00"),
                                        key="r1", **common))
    assert received.value == D("40.00")
    again = bench.handle(PostReceipt(item="RM-STEEL", qty=D(10), to_location="STORES", unit_cost=D("4.00"),
                                     key="r1", **common))
    assert again.id == received.id  # same key, same content: the original move
    with pytest.raises(InvalidMove, match="exactly one of a total value or a unit cost"):
        bench.handle(PostReceipt(item="RM-STEEL", qty=D(1), to_location="STORES", value=D(4), unit_cost=D(4),
                                 **common))
    bench.handle(PostIssue(item="RM-STEEL", qty=D(5), from_location="STORES", **common))
    bench.handle(PostTransfer(item="RM-STEEL", qty=D(5), from_location="STORES", to_location="WIP", **common))
    with pytest.raises(InsufficientStock):
        bench.handle(PostIssue(item="RM-STEEL", qty=D(1000), from_location="STORES", **common))
    assert stock(bench, "RM-STEEL") == {"STORES": (D(100), D("400.00")), "WIP": (D(5), D("20.00"))}
    found = bench.handle(PostCount(item="RM-STEEL", location="STORES", counted=D(98), **common))
    assert found is not None and found.qty == D(2) and found.from_location == "STORES"
    assert bench.handle(PostCount(item="RM-STEEL", location="STORES", counted=D(98), **common)) is None
    bench.handle(PostCount(item="RM-STEEL", location="STORES", delta=D(1), **common))
    returned = bench.handle(PostReceipt(item="RM-BOLT", qty=D(4), to_location="QUAR", quarantine=True, **common))
    assert returned.to_location == "QUAR"
    bench.handle(DecideQuarantine(item="RM-BOLT", qty=D(3), from_location="QUAR", accept_to="STORES", **common))
    with pytest.raises(InvalidMove, match="exactly one of accept-to or reject-to"):
        bench.handle(DecideQuarantine(item="RM-BOLT", qty=D(1), from_location="QUAR", **common))
    reversal = bench.handle(ReverseMove(move_id=found.id, actor="tester", reason="miscounted"))
    assert reversal.reverses == found.id
    assert stock(bench, "RM-STEEL")["STORES"][0] == D(101)


def test_obsoleting_a_bom_through_its_handler(bench: Bench, example_plant: Path) -> None:
    load(bench, example_plant)
    assert bench.handle(ReleaseOrder("WO-0", "FG-BRACKET", D(1), on=DAY)).bom_revision == "A"
    version = bench.handle(ObsoleteBom("FG-BRACKET", "A"))
    assert version.state.value == "obsolete"
    snapshot = bench.handle(ReleaseOrder("WO-1", "FG-BRACKET", D(1), on=DAY))
    assert snapshot.bom_revision is None  # the cached structure followed the obsolescence
    assert all(not op.materials for op in snapshot.operations)


def test_a_transaction_that_lost_a_race_is_run_again(example_plant: Path) -> None:
    db = FakeDatabase()
    bench = Bench(lambda command: run(db.uow, lambda uow: handle(command, uow)), db.engine.begin, db.caches, db)
    load(bench, example_plant)
    commits = db.commits
    db.lose_races = 2
    snapshot = bench.handle(ReleaseOrder("WO-1", "FG-BRACKET", D(10), on=DAY))
    assert snapshot.order_id == "WO-1"
    assert db.commits == commits + 1 and db.lose_races == 0
    assert count(bench, "work_orders") == 1  # the two lost attempts were rolled back


def test_a_refused_command_rolls_back_and_is_not_retried(example_plant: Path) -> None:
    db = FakeDatabase()
    calls = []

    def once(command: object) -> Any:
        def work(uow: Any) -> Any:
            calls.append(command)
            return handle(command, uow)
        return run(db.uow, work)

    with pytest.raises(DomainError):
        once(ReleaseOrder("WO-1", "FG-BRACKET", D(1), on=DAY))
    assert len(calls) == 1 and db.commits == 0 and db.rollbacks == 1
    with pytest.raises(TypeError, match="no handler for str"):
        once("release everything")
