"""Lots through the database: every lot of an item at a location is locked with it, in the order of its first
receipt; an issue takes the oldest first and names every lot when short (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy.engine import Engine

from ledger import repository as repo
from ledger import service as ledger_service
from ledger.lots import LotShortage, split_issue
from ledger.model import BalanceKey

from .test_repository import T0, receipt

D = Decimal


def test_lots_are_locked_with_their_item_oldest_first(plant: Engine) -> None:
    with plant.begin() as conn:
        ledger_service.post_moves(conn, [
            receipt("r-b", "RM-STEEL", "5", "25.00", lot="L-B", at=T0 + timedelta(days=2)),
            receipt("r-a", "RM-STEEL", "10", "40.00", lot="L-A", at=T0),
            receipt("r-c", "RM-STEEL", "20", "120.00", lot="L-C", at=T0 + timedelta(days=1)),
            receipt("r-0", "RM-BOLT", "3", "0.30"),
        ])
    with plant.begin() as conn:
        balances, lots, later = repo.lock_balances_with_lots(conn, [BalanceKey("RM-STEEL", "STORES"),
                                                                    BalanceKey("RM-BOLT", "STORES")],
                                                             T0 + timedelta(days=1))
    assert later == {BalanceKey("RM-STEEL", "STORES", "L-B"): [(T0 + timedelta(days=2), D(5))]}
    assert lots == {("RM-STEEL", "STORES"): ["L-A", "L-C", "L-B"]}
    assert balances[BalanceKey("RM-STEEL", "STORES", "L-C")].value == D("120.00")
    assert balances[BalanceKey("RM-STEEL", "STORES")].qty == 0  # created by the lock, empty
    assert split_issue(balances, lots[("RM-STEEL", "STORES")], "RM-STEEL", "STORES", D(12)) == [
        ("L-A", D(10)), ("L-C", D(2))]
    assert split_issue(balances, lots[("RM-STEEL", "STORES")], "RM-STEEL", "STORES", D(4), "L-B") == [("L-B", D(4))]
    with pytest.raises(LotShortage) as short:
        split_issue(balances, lots[("RM-STEEL", "STORES")], "RM-STEEL", "STORES", D(36))
    assert short.value.message == ("insufficient stock of RM-STEEL at STORES: requested 36, available 35 (by lot: "
                                   "L-A 10, L-C 20, L-B 5)")
