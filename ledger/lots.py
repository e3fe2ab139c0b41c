"""Lots: which lots an issue takes (oldest first), and the shortage that counts every lot.

``split_issue`` is the pure rule: an issue of ``qty`` of an item at a location takes first the stock held without a
lot, then each lot in the order of its first receipt, each at its own moving average, until ``qty`` is covered;
when the issue names a lot, only that lot. ``LotShortage`` is refused before anything moves, naming the stock
of every lot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from ledger.model import Balance, BalanceKey, InsufficientStock
from mes_common.money import ZERO, fmt_qty


class LotShortage(InsufficientStock):
    """Not enough stock of an item at a location, counting every lot (the message lists them)."""

    def __init__(self, item: str, location: str, requested: Decimal, held: Sequence[tuple[str, Decimal]],
                 named: str | None) -> None:
        available = sum((qty for _, qty in held), ZERO)
        super().__init__(item, location, named or "", requested, available)
        parts = ", ".join(f"{lot or 'no lot'} {fmt_qty(qty)}" for lot, qty in held if qty)
        if parts and not named:
            self.message = f"{self.message} (by lot: {parts})"
            self.args = (self.message,)


def split_issue(balances: Mapping[BalanceKey, Balance], lots: Sequence[str], item: str, location: str,
                qty: Decimal, named: str | None = None) -> list[tuple[str, Decimal]]:
    """(lot, quantity) pieces of an issue of ``qty``: the unlotted stock first, then ``lots`` (oldest first);
    only lot ``named`` when the issue names one. Raises ``LotShortage`` when they hold less than ``qty``."""
    order = [named] if named else ["", *lots]
    held: list[tuple[str, Decimal]] = []
    for lot in order:
        balance = balances.get(BalanceKey(item, location, lot))
        held.append((lot, ZERO if balance is None else balance.qty))
    pieces: list[tuple[str, Decimal]] = []
    left = qty
    for lot, available in held:
        if left <= 0:
            break
        take = min(left, available)
        if take > 0:
            pieces.append((lot, take))
            left -= take
    if left > 0:
        raise LotShortage(item, location, qty, held, named)
    return pieces
