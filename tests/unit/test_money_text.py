"""``fmt`` and ``fmt_qty`` (``str`` first, fixed notation when ``str`` chose an exponent) write what
``format(x, "f")`` writes (``fmt_qty``: with trailing zeros stripped)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mes_common.money import fmt, fmt_qty


def reference(qty: Decimal) -> str:
    text = format(qty, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


@pytest.mark.parametrize("qty", ["0", "0.0", "0.000", "1.50", "90.000", "100", "1E+2", "2.5E+3", "0.000100", "1E-7",
                                 "1.23E-5", "-0", "-2.50", "123456789012345678.123456", "1E+30"])
def test_fmt_qty_is_fixed_notation_without_trailing_zeros(qty: str) -> None:
    assert fmt_qty(Decimal(qty)) == reference(Decimal(qty))


@pytest.mark.parametrize("amount", ["0", "0.00", "12.34", "1E+1", "2.5E+0", "1E-7", "0.01", "-0.00", "-3.50",
                                    "1E+25", "12345678901234567890.12"])
def test_fmt_is_fixed_notation(amount: str) -> None:
    assert fmt(Decimal(amount)) == format(Decimal(amount), "f")
