"""The stock moves' hand-built COPY text (costing's hot path) says what the generic COPY formatting says."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from ledger.model import Balance, BalanceKey, MoveKind
from ledger.posting import post_issue_or_receipt
from ledger.repository import _MOVE_COLUMNS, _move_row, moves_copy_text
from mes_common.db import copy_text
from mes_common.provenance import Provenance

D = Decimal
STEEL = BalanceKey("RM-STEEL", "STORES")


def test_hand_built_text_matches_the_generic_format() -> None:
    balances = {STEEL: Balance(STEEL, D(10), D("40.00"))}
    when = datetime(2026, 11, 22, 8, tzinfo=timezone(timedelta(hours=2)))
    moves = [
        post_issue_or_receipt(balances, idempotency_key="e\\1\t/issue/0/RM-STEEL", kind=MoveKind.ISSUE,
                              item="RM-STEEL", qty=D("2.5"), location="STORES", value=None, actor="ann\nsmith",
                              reason="work order WO\\1 operation 10", provenance=Provenance.SENSOR, effective_at=when,
                              reference=None),
        post_issue_or_receipt(balances, idempotency_key="e2/receipt/FG", kind=MoveKind.RECEIPT, item="FG",
                              qty=D("1E+1"), location="FG", value=D("12.30"), actor="mes-bridge", reason="done\r",
                              provenance=Provenance.SCAN, effective_at=when, reference="WO-1",
                              recorded_at=datetime(2026, 11, 23, tzinfo=UTC)),
    ]
    generic = "".join("\t".join(map(copy_text, [move_id, *(_move_row(m)[c] for c in _MOVE_COLUMNS)])) + "\n"
                      for move_id, m in zip([7, 9], moves, strict=True))
    assert moves_copy_text(moves, [7, 9]) == generic


def test_serial_numbers_go_in_one_field_one_per_line() -> None:
    balances = {STEEL: Balance(STEEL, D(10), D("40.00"))}
    move = post_issue_or_receipt(balances, idempotency_key="k", kind=MoveKind.ISSUE, item="RM-STEEL", qty=D(2),
                                 location="STORES", value=None, actor="a", reason="r", provenance=Provenance.MANUAL,
                                 effective_at=datetime(2026, 1, 1, tzinfo=UTC), reference=None)
    move = move._replace(serials=("S1", "S\\2"))
    text = moves_copy_text([move], [1])
    assert text.endswith("\tS1\\nS\\\\2\n")
    assert text == "\t".join(map(copy_text, [1, *(_move_row(move)[c] for c in _MOVE_COLUMNS)])) + "\n"
