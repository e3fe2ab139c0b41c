"""Repository round trips on SQLite and PostgreSQL: posting, idempotency, reversal, on-hand, valuation, check."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from ledger import queries as ledger_queries
from ledger import repository as repo
from ledger import service as ledger_service
from ledger.model import (
    AlreadyReversed,
    Balance,
    BalanceKey,
    InsufficientStock,
    InvalidMove,
    LocationKind,
    MoveConflict,
    MoveKind,
    MoveRequest,
    UnknownItem,
    UnknownLocation,
)
from ledger.tables import stock_lots, stock_moves
from mes_common.errors import DomainError
from mes_common.money import unit_cost
from mes_common.provenance import Provenance

D = Decimal
T0 = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def receipt(key: str, item: str, qty: str, value: str, to: str = "STORES", lot: str = "", at: datetime = T0):
    return MoveRequest(idempotency_key=key, kind=MoveKind.RECEIPT, item=item, qty=D(qty), to_location=to, lot=lot,
                       value=D(value), actor="alice", reason="purchase", effective_at=at)  # fmt: skip


def issue(key: str, item: str, qty: str, frm: str = "STORES", at: datetime = T1, lot: str = ""):
    return MoveRequest(idempotency_key=key, kind=MoveKind.ISSUE, item=item, qty=D(qty), from_location=frm, lot=lot,
                       actor="PLC-7", reason="op 10", provenance=Provenance.SENSOR, effective_at=at,
                       reference="LASER-1:parts:0:1041")  # fmt: skip


def test_receive_issue_and_onhand_round_trip(plant: Engine) -> None:
    with plant.begin() as conn:
        moves = ledger_service.post_moves(
            conn, [receipt("r1", "RM-STEEL", "100", "400.00"), receipt("r2", "RM-BOLT", "500", "50")]
        )
        assert moves[0].id is not None and moves[1].id == moves[0].id + 1
    with plant.begin() as conn:
        [m] = ledger_service.post_moves(conn, [issue("i1", "RM-STEEL", "10")])
    assert m.value == D("40.00") and m.from_location == "STORES" and m.provenance is Provenance.SENSOR
    with plant.connect() as conn:
        rows = repo.onhand(conn)
        stored = ledger_queries.get_move(conn, m.id or 0)
        assert repo.check(conn) == []
    assert [(r.item, r.location, r.lot, r.qty, r.value) for r in rows] == [
        ("RM-BOLT", "STORES", "", D("500"), D("50.00")),
        ("RM-STEEL", "STORES", "", D("90"), D("360.00")),
    ]
    assert repo.onhand_json(rows)["rows"][1] == {
        "item": "RM-STEEL", "location": "STORES", "lot": "", "qty": "90", "value": "360.00"}  # fmt: skip
    assert stored == m
    assert stored.effective_at == T1 and stored.recorded_at.tzinfo is not None
    assert stored.actor == "PLC-7" and stored.reason == "op 10" and stored.reference == "LASER-1:parts:0:1041"


def test_onhand_as_of_uses_effective_time(plant: Engine) -> None:
    with plant.begin() as conn:
        ledger_service.post_moves(conn, [receipt("r1", "RM-STEEL", "100", "400.00", at=T0)])
        ledger_service.post_moves(conn, [issue("i1", "RM-STEEL", "30", at=T2)])
        # Arrives late but happened at T1: the past view changes too.
        ledger_service.post_moves(conn, [issue("i2", "RM-STEEL", "10", at=T1)])
    with plant.connect() as conn:
        before = repo.onhand(conn, as_of=datetime(2026, 11, 22, 7, tzinfo=UTC))
        at_t1 = repo.onhand(conn, "RM-STEEL", as_of=T1)
        now = repo.onhand(conn, "RM-STEEL", location="STORES")
        at_t2 = repo.onhand(conn, as_of=T2)
    assert before == []
    assert [(r.qty, r.value) for r in at_t1] == [(D("90"), D("360.00"))]
    assert [(r.qty, r.value) for r in now] == [(D("60"), D("240.00"))]
    assert at_t2 == now


def test_retry_returns_original_and_conflict_is_refused(plant: Engine) -> None:
    with plant.begin() as conn:
        [first] = ledger_service.post_moves(conn, [receipt("r1", "RM-STEEL", "100", "400.00")])
    with plant.begin() as conn:
        [again] = ledger_service.post_moves(conn, [receipt("r1", "RM-STEEL", "100", "400.00")])
    assert again == first and again.id == first.id
    with pytest.raises(MoveConflict) as info, plant.begin() as conn:
        ledger_service.post_moves(conn, [receipt("r1", "RM-STEEL", "100", "401.00")])
    assert "value: recorded 400.00, now 401.00" in info.value.message
    with plant.connect() as conn:
        assert conn.execute(select(stock_moves.c.id)).scalars().all() == [first.id]
        assert [r.qty for r in repo.onhand(conn)] == [D("100")]


def test_batch_is_all_or_nothing(plant: Engine) -> None:
    with plant.begin() as conn:
        ledger_service.post_moves(conn, [receipt("r1", "RM-STEEL", "5", "20.00")])
    with pytest.raises(InsufficientStock) as info, plant.begin() as conn:
        ledger_service.post_moves(conn, [issue("i1", "RM-STEEL", "3"), issue("i2", "RM-STEEL", "3")])
    err = info.value
    assert (err.item, err.location, err.requested, err.available) == ("RM-STEEL", "STORES", D("3"), D("2"))
    assert "available 2" in err.message
    with plant.connect() as conn:
        assert [(r.qty, r.value) for r in repo.onhand(conn)] == [(D("5"), D("20.00"))]
        assert len(ledger_queries.list_moves(conn)) == 1


def test_unknown_codes_are_refused(plant: Engine) -> None:
    with pytest.raises(UnknownItem, match="RM-COPPER"), plant.begin() as conn:
        ledger_service.post_moves(conn, [receipt("r1", "RM-COPPER", "1", "1.00")])
    with pytest.raises(UnknownLocation, match="NOWHERE"), plant.begin() as conn:
        ledger_service.post_moves(conn, [receipt("r1", "RM-STEEL", "1", "1.00", to="NOWHERE")])


def test_transfer_keeps_value_and_average(plant: Engine) -> None:
    with plant.begin() as conn:
        ledger_service.post_moves(conn, [receipt("r1", "RM-BOLT", "3", "1.00")])
        transfer = MoveRequest(idempotency_key="t1", kind=MoveKind.TRANSFER, item="RM-BOLT", qty=D("1"),
                               from_location="STORES", to_location="STORES-2")  # fmt: skip
        [t] = ledger_service.post_moves(conn, [transfer])
    assert t.value == D("0.33")
    with plant.connect() as conn:
        assert [(r.location, r.qty, r.value) for r in repo.onhand(conn)] == [
            ("STORES", D("2"), D("0.67")), ("STORES-2", D("1"), D("0.33"))]  # fmt: skip
        # Average over stores locations: 1.00 / 3 at full precision.
        assert repo.average_costs(conn, ["RM-BOLT", "RM-STEEL"]) == {"RM-BOLT": unit_cost(D("1.00"), D("3"))}
        assert repo.onhand_by_item(conn, ["RM-BOLT", "RM-STEEL"]) == {"RM-BOLT": D("3"), "RM-STEEL": D("0")}
        assert repo.check(conn) == []


def test_reversal_restores_balance_and_is_refused_twice(plant: Engine) -> None:
    with plant.begin() as conn:
        ledger_service.post_moves(conn, [receipt("r1", "RM-STEEL", "10", "40.00")])
        [i] = ledger_service.post_moves(conn, [issue("i1", "RM-STEEL", "4")])
    with plant.begin() as conn:
        rev = ledger_service.reverse_move(conn, i.id or 0, "bob", "wrong order")
    assert (rev.kind, rev.to_location, rev.from_location, rev.value, rev.reverses) == (
        MoveKind.REVERSAL, "STORES", None, D("16.00"), i.id)  # fmt: skip
    assert rev.actor == "bob" and rev.reason == "wrong order" and rev.provenance is Provenance.MANUAL
    with pytest.raises(AlreadyReversed, match=f"already reversed by move {rev.id}"), plant.begin() as conn:
        ledger_service.reverse_move(conn, i.id or 0, "bob", "again")
    with pytest.raises(InvalidMove, match="itself a reversal"), plant.begin() as conn:
        ledger_service.reverse_move(conn, rev.id or 0, "bob", "undo the undo")
    with plant.connect() as conn:
        assert [(r.qty, r.value) for r in repo.onhand(conn)] == [(D("10"), D("40.00"))]
        assert repo.check(conn) == []


def test_reversing_a_receipt_after_price_change_never_leaves_value_without_quantity(plant: Engine) -> None:
    with plant.begin() as conn:
        [a] = ledger_service.post_moves(conn, [receipt("a", "RM-STEEL", "10", "40.00")])
        ledger_service.post_moves(conn, [receipt("b", "RM-STEEL", "10", "60.00")])
        ledger_service.post_moves(conn, [issue("i", "RM-STEEL", "10")])  # takes 50.00, leaves 10 @ 50.00
        rev = ledger_service.reverse_move(conn, a.id or 0, "bob", "supplier returned")
    assert rev.value == D("50.00")  # the last units take exactly what remains
    with plant.connect() as conn:
        assert repo.onhand(conn) == []
        assert repo.check(conn) == []


def test_quarantine_return_accept_reject(plant: Engine) -> None:
    def move(key: str, kind: MoveKind, qty: str, frm: str | None, to: str | None, value: str | None = None):
        return MoveRequest(idempotency_key=key, kind=kind, item="FG-BRACKET", qty=D(qty), from_location=frm,
                           to_location=to, value=None if value is None else D(value))  # fmt: skip

    with plant.begin() as conn:
        ledger_service.post_moves(conn, [move("ret", MoveKind.QUARANTINE_RETURN, "4", None, "QUAR", "40.00")])
        with pytest.raises(InvalidMove, match="held until inspected"):
            ledger_service.post_moves(conn, [move("iss", MoveKind.ISSUE, "1", "QUAR", None)])
        with pytest.raises(InvalidMove, match="into a quarantine location"):
            ledger_service.post_moves(conn, [move("bad", MoveKind.QUARANTINE_RETURN, "1", None, "FG", "1.00")])
        ledger_service.post_moves(conn, [move("ok", MoveKind.QUARANTINE_ACCEPT, "3", "QUAR", "FG")])
        with pytest.raises(InvalidMove, match="goes to a scrap location"):
            ledger_service.post_moves(conn, [move("rej0", MoveKind.QUARANTINE_REJECT, "1", "QUAR", "FG")])
        ledger_service.post_moves(conn, [move("rej", MoveKind.QUARANTINE_REJECT, "1", "QUAR", "SCRAP")])
    with plant.connect() as conn:
        assert [(r.location, r.qty, r.value) for r in repo.onhand(conn)] == [
            ("FG", D("3"), D("30.00")), ("SCRAP", D("1"), D("10.00"))]  # fmt: skip
        assert repo.check(conn) == []


def test_lots_are_separate_balances_and_registered(plant: Engine) -> None:
    with plant.begin() as conn:
        ledger_service.post_moves(conn, [receipt("a", "RM-STEEL", "10", "40.00", lot="L1"),
                               receipt("b", "RM-STEEL", "10", "50.00", lot="L2")])  # fmt: skip
        [i] = ledger_service.post_moves(conn, [issue("i", "RM-STEEL", "5", lot="L2")])
        with pytest.raises(InsufficientStock, match="lot L1 at STORES: requested 11, available 10"):
            ledger_service.post_moves(conn, [issue("j", "RM-STEEL", "11", lot="L1")])
    assert i.value == D("25.00")
    with plant.connect() as conn:
        lots = conn.execute(select(stock_lots.c.lot).order_by(stock_lots.c.lot)).scalars().all()
        assert lots == ["L1", "L2"]
        assert [(r.lot, r.qty) for r in repo.onhand(conn)] == [("L1", D("10")), ("L2", D("5"))]


def test_lock_balances_and_write_moves_hot_path(plant: Engine) -> None:
    from ledger.posting import post

    key = BalanceKey("RM-BOLT", "STORES")
    with plant.begin() as conn:
        balances = repo.lock_balances(conn, [key])
        assert balances == {key: Balance(key, D(0), D(0))}
        moves = [post(balances, receipt(f"r{n}", "RM-BOLT", "1", "0.10")) for n in range(3)]
        ids = repo.write_moves(conn, moves, balances)
    assert len(set(ids)) == 3 and ids == sorted(ids)
    with plant.connect() as conn:
        assert [(r.qty, r.value) for r in repo.onhand(conn)] == [(D("3"), D("0.30"))]
        assert repo.check(conn) == []


def test_default_location_is_the_first_created_of_its_kind(plant: Engine) -> None:
    with plant.connect() as conn:
        assert repo.default_location(conn, LocationKind.STORES) == "STORES"
        assert repo.default_location(conn, LocationKind.FINISHED) == "FG"
        assert list(repo.get_locations(conn)) == ["STORES", "WIP", "FG", "SCRAP", "QUAR", "STORES-2"]
        assert set(repo.get_items(conn, ["RM-BOLT", "NOPE"])) == {"RM-BOLT"}


def test_default_location_missing_kind_names_it(engine: Engine) -> None:
    with pytest.raises(DomainError, match="no location of kind quarantine"), engine.connect() as conn:
        repo.default_location(conn, LocationKind.QUARANTINE)


def test_moves_table_refuses_update_and_delete(plant: Engine) -> None:
    with plant.begin() as conn:
        ledger_service.post_moves(conn, [receipt("r1", "RM-STEEL", "1", "4.00")])
    for statement in ("UPDATE stock_moves SET qty = qty * 2", "DELETE FROM stock_moves"):
        with pytest.raises(DBAPIError, match="append-only"), plant.begin() as conn:
            conn.execute(text(statement))
    with plant.connect() as conn:
        assert [(r.qty, r.value) for r in repo.onhand(conn)] == [(D("1"), D("4.00"))]


def test_check_reports_a_tampered_balance(plant: Engine) -> None:
    with plant.begin() as conn:
        ledger_service.post_moves(conn, [receipt("r1", "RM-STEEL", "10", "40.00")])
        conn.execute(text("UPDATE stock_balances SET value = 0, qty = 0"))
    with plant.connect() as conn:
        problems = repo.check(conn)
    assert problems == ["balance of RM-STEEL at STORES is 0 / 0.00 but its moves sum to 10 / 40.00"]


def serial_move(key: str, kind: MoveKind, serials: tuple[str, ...], frm: str | None = None, to: str | None = None,
                value: str | None = None) -> MoveRequest:  # fmt: skip
    return MoveRequest(idempotency_key=key, kind=kind, item="FG-BRACKET", qty=D(len(serials)), from_location=frm,
                       to_location=to, value=None if value is None else D(value), serials=serials)  # fmt: skip


def test_serial_numbers_are_in_one_place_at_a_time(plant: Engine) -> None:
    from ledger.model import SerialUnavailable

    with plant.begin() as conn:
        [r] = ledger_service.post_moves(
            conn, [serial_move("r", MoveKind.RECEIPT, ("SN-1", "SN-2", "SN-3"), to="FG", value="30")]
        )
        ledger_service.post_moves(conn, [serial_move("t", MoveKind.TRANSFER, ("SN-2",), frm="FG", to="STORES")])
    with pytest.raises(SerialUnavailable, match="serial SN-2 of FG-BRACKET is at STORES, expected at FG"), \
            plant.begin() as conn:  # fmt: skip
        ledger_service.post_moves(conn, [serial_move("i", MoveKind.ISSUE, ("SN-1", "SN-2"), frm="FG")])
    with pytest.raises(SerialUnavailable, match="SN-3 of FG-BRACKET is at FG, expected not in stock"), \
            plant.begin() as conn:  # fmt: skip
        ledger_service.post_moves(conn, [serial_move("r2", MoveKind.RECEIPT, ("SN-3", "SN-4"), to="FG", value="20")])
    with plant.begin() as conn:
        [i] = ledger_service.post_moves(conn, [serial_move("i", MoveKind.ISSUE, ("SN-1",), frm="FG")])
        assert ledger_service.post_moves(conn, [serial_move("i", MoveKind.ISSUE, ("SN-1",), frm="FG")]) == [i]
        with pytest.raises(MoveConflict, match="serials: recorded SN-1, now SN-3"):
            ledger_service.post_moves(conn, [serial_move("i", MoveKind.ISSUE, ("SN-3",), frm="FG")])
        # SN-1 left the ledger, so it can come back (a return), and a reversal brings back the units it took.
        rev = ledger_service.reverse_move(conn, i.id or 0, "bob", "issued by mistake")
    assert rev.serials == ("SN-1",) and r.serials == ("SN-1", "SN-2", "SN-3")
    with plant.connect() as conn:
        assert repo.serials_in_stock(conn, "FG-BRACKET") == [("SN-1", "FG", ""), ("SN-2", "STORES", ""),
                                                              ("SN-3", "FG", "")]  # fmt: skip
        assert repo.serials_in_stock(conn, "FG-BRACKET", "STORES") == [("SN-2", "STORES", "")]
        assert repo.serial_history(conn, "FG-BRACKET", "SN-1") == [r.id, i.id, rev.id]
        assert ledger_queries.get_move(conn, r.id or 0).serials == ("SN-1", "SN-2", "SN-3")
        assert repo.check(conn) == []


def test_serial_numbers_survive_a_batch_large_enough_to_be_copied(plant: Engine) -> None:
    # From COPY_FROM moves PostgreSQL loads them by COPY: the serials travel in one escaped field.
    batch = [serial_move(f"r{n}", MoveKind.RECEIPT, (f"SN-{n}a", f"SN\\{n}\tb"), to="FG", value="20")
             for n in range(repo.COPY_FROM)]
    with plant.begin() as conn:
        posted = ledger_service.post_moves(conn, batch)
    with plant.connect() as conn:
        assert [ledger_queries.get_move(conn, m.id or 0).serials for m in posted] == [
            (f"SN-{n}a", f"SN\\{n}\tb") for n in range(repo.COPY_FROM)]
        assert repo.serial_history(conn, "FG-BRACKET", "SN\\2\tb") == [posted[2].id]
        assert repo.check(conn) == []


def test_serial_count_must_match_quantity() -> None:
    with pytest.raises(InvalidMove, match="2 serial numbers for a quantity of 3"):
        MoveRequest(idempotency_key="k", kind=MoveKind.RECEIPT, item="X", qty=D(3), to_location="FG",
                    value=D(0), serials=("A", "B"))  # fmt: skip


@pytest.mark.parametrize("batch", [2, repo.COPY_FROM + 1])
def test_write_moves_that_lost_a_race_raises_move_conflict(plant: Engine, batch: int) -> None:
    from ledger.posting import post

    with plant.begin() as conn:
        ledger_service.post_moves(conn, [receipt("r1", "RM-STEEL", "10", "40.00")])
    key = BalanceKey("RM-STEEL", "STORES")
    # Small batches (and SQLite) also name the differences; COPY on PostgreSQL aborts the transaction first.
    with pytest.raises(MoveConflict, match=r"'r1'.*posted concurrently by another transaction") as info, \
            plant.begin() as conn:  # fmt: skip
        balances = repo.lock_balances(conn, [key])
        # As if the idempotency lookup had run before the other transaction committed "r1".
        late = post(balances, receipt("r1", "RM-STEEL", "3", "12.00"))
        others = [post(balances, receipt(f"r0-{n}", "RM-STEEL", "1", "1.00")) for n in range(batch - 1)]
        repo.write_moves(conn, [*others, late], balances)
    copied = plant.dialect.name == "postgresql" and batch >= repo.COPY_FROM
    assert ("qty: 10 vs 3" in info.value.message) is not copied
    with plant.connect() as conn:
        assert [(m.idempotency_key, m.qty) for m in ledger_queries.list_moves(conn)] == [("r1", D("10"))]
        assert repo.check(conn) == []


def test_list_moves_returns_the_latest_in_order(plant: Engine) -> None:
    with plant.begin() as conn:
        ledger_service.post_moves(conn, [receipt(f"r{n}", "RM-BOLT", "1", "0.10") for n in range(5)])
        ledger_service.post_moves(conn, [receipt("s", "RM-STEEL", "1", "4.00")])
    with plant.connect() as conn:
        assert [m.idempotency_key for m in ledger_queries.list_moves(conn, item="RM-BOLT", limit=2)] == ["r3", "r4"]
        assert len(ledger_queries.list_moves(conn)) == 6


def test_check_reports_serial_numbers_beyond_the_balance(plant: Engine) -> None:
    from ledger.tables import stock_serials

    with plant.begin() as conn:
        ledger_service.post_moves(conn, [serial_move("r", MoveKind.RECEIPT, ("SN-1",), to="FG", value="10")])
        conn.execute(stock_serials.insert().values(item="FG-BRACKET", serial="SN-X", lot="", location="FG"))
    with plant.connect() as conn:
        assert repo.check(conn) == ["2 serial numbers of FG-BRACKET are at FG but its balance holds 1"]
