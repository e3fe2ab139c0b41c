"""Hypothesis state machine: receive, issue, transfer, reverse, retry and conflicting retry through the repository
(on a fresh SQLite database per example), checked after every step against a plain model of quantities and
of the value that entered and left the ledger.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger import repository as repo
from ledger import service as ledger_service
from ledger.model import AlreadyReversed, BalanceKey, InsufficientStock, MoveConflict, MoveKind, MoveRequest, PostedMove
from mes_common.db import make_engine
from tests.integration.ledger.master_data import ITEMS, LOCATIONS

D = Decimal
ITEM_CODES = ["RM-STEEL", "RM-BOLT"]
PLACES = ["STORES", "STORES-2", "FG"]  # no quarantine: issues and transfers out of it are refused by design
LOTS = ["", "L1"]
ZERO = D(0)


def make_machine(template: Path | None = None, new_pg_url: Callable[[], str] | None = None
                 ) -> type[RuleBasedStateMachine]:
    """A machine on a copy of the migrated SQLite ``template``, or on a fresh PostgreSQL database from
    ``new_pg_url``."""

    class LedgerMachine(RuleBasedStateMachine):
        @initialize()
        def fresh_database(self) -> None:
            self.dir = tempfile.mkdtemp(prefix="ledger-stateful-")
            if new_pg_url is not None:
                self.engine = make_engine(new_pg_url())
            else:
                assert template is not None
                path = Path(self.dir) / "db.sqlite"
                shutil.copyfile(template, path)
                self.engine = make_engine(f"sqlite+pysqlite:///{path}")
            with self.engine.begin() as conn:
                repo.add_items(conn, ITEMS)
                repo.add_locations(conn, LOCATIONS)
            self.qty: dict[BalanceKey, Decimal] = {}
            self.value_in = ZERO  # value that entered the ledger minus value that left it
            self.history: list[tuple[MoveRequest, PostedMove]] = []
            self.reversed: set[int] = set()
            self.n = 0

        def teardown(self) -> None:
            if hasattr(self, "engine"):
                self.engine.dispose()
                shutil.rmtree(self.dir, ignore_errors=True)

        def _post(self, request: MoveRequest) -> PostedMove:
            with self.engine.begin() as conn:
                [move] = ledger_service.post_moves(conn, [request])
            return move

        def _key(self) -> str:
            self.n += 1
            return f"k{self.n}"

        def _apply(self, request: MoveRequest) -> None:
            source = request.from_key
            available = self.qty.get(source, ZERO) if source else None
            if available is not None and available < request.qty:
                try:
                    self._post(request)
                except InsufficientStock as exc:
                    assert exc.available == available and exc.requested == request.qty
                    return
                raise AssertionError(f"{request} should have been refused, {available} available")
            move = self._post(request)
            assert move.qty == request.qty and move.id is not None
            if source:
                self.qty[source] -= request.qty
                self.value_in -= move.value
            if request.to_key:
                self.qty[request.to_key] = self.qty.get(request.to_key, ZERO) + request.qty
                self.value_in += move.value
            self.history.append((request, move))

        @rule(item=st.sampled_from(ITEM_CODES), to=st.sampled_from(PLACES), lot=st.sampled_from(LOTS),
              qty=st.integers(1, 20), cents=st.integers(0, 10_000))  # fmt: skip
        def receive(self, item: str, to: str, lot: str, qty: int, cents: int) -> None:
            self._apply(MoveRequest(idempotency_key=self._key(), kind=MoveKind.RECEIPT, item=item, qty=D(qty),
                                    to_location=to, lot=lot, value=D(cents).scaleb(-2)))  # fmt: skip

        @rule(item=st.sampled_from(ITEM_CODES), frm=st.sampled_from(PLACES), lot=st.sampled_from(LOTS),
              qty=st.integers(1, 15))  # fmt: skip
        def issue(self, item: str, frm: str, lot: str, qty: int) -> None:
            self._apply(MoveRequest(idempotency_key=self._key(), kind=MoveKind.ISSUE, item=item, qty=D(qty),
                                    from_location=frm, lot=lot))  # fmt: skip

        @rule(item=st.sampled_from(ITEM_CODES), places=st.permutations(PLACES), lot=st.sampled_from(LOTS),
              qty=st.integers(1, 15))  # fmt: skip
        def transfer(self, item: str, places: list[str], lot: str, qty: int) -> None:
            self._apply(MoveRequest(idempotency_key=self._key(), kind=MoveKind.TRANSFER, item=item, qty=D(qty),
                                    from_location=places[0], to_location=places[1], lot=lot))  # fmt: skip

        @rule(item=st.sampled_from(ITEM_CODES), where=st.sampled_from(PLACES), lot=st.sampled_from(LOTS),
              delta=st.integers(-10, 10).filter(bool))  # fmt: skip
        def count_adjustment(self, item: str, where: str, lot: str, delta: int) -> None:
            side = {"to_location": where} if delta > 0 else {"from_location": where}
            self._apply(MoveRequest(idempotency_key=self._key(), kind=MoveKind.ADJUSTMENT, item=item,
                                    qty=D(abs(delta)), lot=lot, **side))  # type: ignore[arg-type]  # fmt: skip

        @precondition(lambda self: any(m.kind is not MoveKind.REVERSAL for _, m in self.history))
        @rule(data=st.data())
        def reverse(self, data: st.DataObject) -> None:
            candidates = [m for _, m in self.history if m.kind is not MoveKind.REVERSAL]
            original = data.draw(st.sampled_from(candidates))
            assert original.id is not None
            source = original.to_key
            if original.id in self.reversed or (source and self.qty.get(source, ZERO) < original.qty):
                try:
                    with self.engine.begin() as conn:
                        ledger_service.reverse_move(conn, original.id, "tester", "stateful")
                except (InsufficientStock, AlreadyReversed):
                    return
                raise AssertionError(f"reversing move {original.id} should have been refused")
            with self.engine.begin() as conn:
                move = ledger_service.reverse_move(conn, original.id, "tester", "stateful")
            assert move.reverses == original.id and move.qty == original.qty
            if source:
                self.qty[source] -= move.qty
                self.value_in -= move.value
            if original.from_key:
                self.qty[original.from_key] = self.qty.get(original.from_key, ZERO) + move.qty
                self.value_in += move.value
            self.reversed.add(original.id)
            self.history.append((MoveRequest(idempotency_key=move.idempotency_key, kind=move.kind, item=move.item,
                                             qty=move.qty, from_location=move.from_location,
                                             to_location=move.to_location, lot=move.lot, value=move.requested_value,
                                             reverses=move.reverses), move))  # fmt: skip

        @precondition(lambda self: bool(self.history))
        @rule(data=st.data())
        def retry_same_key(self, data: st.DataObject) -> None:
            request, original = data.draw(st.sampled_from(self.history))
            assert self._post(request) == original

        @precondition(lambda self: bool(self.history))
        @rule(data=st.data())
        def retry_with_other_content(self, data: st.DataObject) -> None:
            request, _ = data.draw(st.sampled_from(self.history))
            changed = MoveRequest(**{**vars(request), "qty": request.qty + 1})
            try:
                self._post(changed)
            except MoveConflict as exc:
                assert "qty: recorded" in exc.message
                return
            raise AssertionError("a changed retry was accepted")

        @invariant()
        def matches_model(self) -> None:
            if not hasattr(self, "engine"):
                return
            with self.engine.connect() as conn:
                rows = repo.onhand(conn)
                assert repo.check(conn) == []
            got = {BalanceKey(r.item, r.location, r.lot): r.qty for r in rows if r.qty}
            assert got == {k: q for k, q in self.qty.items() if q}
            assert sum((r.value for r in rows), ZERO) == self.value_in

    return LedgerMachine


SETTINGS = settings(
    max_examples=25, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_ledger_state_machine_sqlite(sqlite_template: Path) -> None:
    run_state_machine_as_test(make_machine(template=sqlite_template), settings=SETTINGS)


@pytest.mark.postgres
def test_ledger_state_machine_postgres(new_pg_url: Callable[[], str]) -> None:
    run_state_machine_as_test(make_machine(new_pg_url=new_pg_url), settings=settings(SETTINGS, max_examples=15))
