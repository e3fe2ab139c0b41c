"""Money and quantity arithmetic: the one module that owns parsing and rounding.

Invariants:
- Money and quantities are ``Decimal``; a ``float`` is refused (it has already lost precision).
- Amounts are rounded to the currency's cents only when posted (``to_cents``), half up.
- Splitting a pool (``take_share``) never creates or loses a cent: the last units take exactly what remains.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext

CENTS = Decimal("0.01")
ZERO = Decimal(0)
# Unit costs and averages carry this many places; amounts are rounded to cents at posting.
UNIT_COST_PLACES = Decimal("0.000001")
# Enough digits for any quantity x unit cost a plant will see, so intermediate products are exact.
_CONTEXT = Context(prec=38, rounding=ROUND_HALF_UP)


class BadNumber(ValueError):
    """A value that is not an exact decimal number (names the value and why)."""


def dec(value: object, *, field: str = "value") -> Decimal:
    """Parse ``value`` into an exact ``Decimal``.

    Accepts ``Decimal``, ``int`` and decimal strings (surrounding ASCII spaces are not accepted:
    callers validating imports report them instead). ``bool`` and ``float`` are refused.
    """
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise BadNumber(f"{field}: {value!r} is not a number")
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        text = value
        if text == "" or text != text.strip():
            raise BadNumber(f"{field}: {value!r} is not a decimal number")
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise BadNumber(f"{field}: {value!r} is not a decimal number") from None
    elif isinstance(value, float):
        raise BadNumber(f"{field}: {value!r} is a binary float; send it as a decimal string")
    else:
        raise BadNumber(f"{field}: {value!r} is not a number")
    if not result.is_finite():
        raise BadNumber(f"{field}: {value!r} is not a finite number")
    return result


def to_cents(amount: Decimal) -> Decimal:
    """Round an amount to the currency's cents, half up."""
    with localcontext(_CONTEXT):
        return amount.quantize(CENTS, rounding=ROUND_HALF_UP) + ZERO


def unit_cost(value: Decimal, qty: Decimal) -> Decimal:
    """Average unit cost of ``qty`` units worth ``value`` (zero for an empty pool), at full precision."""
    if qty == 0:
        return ZERO
    with localcontext(_CONTEXT):
        return value / qty


def take_share(pool_value: Decimal, pool_qty: Decimal, qty: Decimal) -> Decimal:
    """The value, in cents, that ``qty`` units take out of a pool of ``pool_qty`` units worth ``pool_value``.

    When ``qty`` empties the pool it takes exactly what remains, so pools end at exactly zero.
    """
    if qty > pool_qty:
        raise ValueError(f"cannot take {qty} units from a pool of {pool_qty}")
    if qty == pool_qty:
        return pool_value
    # ``to_cents(pool_value * qty / pool_qty)`` in this module's context, through the context's methods: this runs
    # for every pool a completion or an issue takes from, and a ``localcontext`` switch costs more than the sums.
    ctx = _CONTEXT
    return ctx.add(ctx.divide(ctx.multiply(pool_value, qty), pool_qty).quantize(CENTS, ROUND_HALF_UP, ctx), ZERO)


def mul_cents(qty: Decimal, price: Decimal) -> Decimal:
    """``qty`` x ``price`` rounded to cents (exact intermediate product)."""
    with localcontext(_CONTEXT):
        return to_cents(qty * price)


def fmt(amount: Decimal) -> str:
    """Canonical string form for JSON, CSV and COPY text: ``format(amount, "f")`` (no exponent), faster."""
    text = str(amount)  # the same text, unless str() chose exponent notation (a hot path: every journal line)
    return text if "E" not in text else format(amount, "f")


def fmt_qty(qty: Decimal) -> str:
    """Quantity without trailing zeros: ``Decimal('90.000')`` -> ``'90'``."""
    text = fmt(qty)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
