"""The documented range of every number and the length of every id accepted at the edge (CSV files, event
JSON, command-line arguments), and the one check that refuses a number outside its range.

Why: the database columns have a fixed size (quantities NUMERIC(24, 6) on PostgreSQL, a scaled 64-bit integer
on SQLite, good to 9.2e12 units), and a value beyond them surfaced as a driver traceback after part of the work
was done. Every edge checks against these limits first, so an oversized value is refused with the field's name
and its range before anything is written. The ranges leave the products of the cost rules (quantity x unit
cost, minutes x rate) far inside the money columns.

Ranges (also in the README's "Limits" section):
- a quantity (event good / scrap / rework, a move, a balance row, a work order): 0 to 1,000,000,000, at most
  6 places, and at most its unit of measure's places (``ledger.units``);
- a unit cost, a labor or machine rate per hour, an energy tariff per kWh: 0 to 1,000,000, at most 6 places;
- a move's total value: 0 to 1,000,000,000,000 (in cents);
- kWh of one event, standard kWh per unit: 0 to 1,000,000; minutes (actual minutes of one event, setup, run
  per unit): 0 to 1,000,000; a BOM quantity per parent unit: above 0 to 1,000,000 (all at most 6 places);
- a percentage: component scrap % 0 to 1,000, yield % above 0 to 100;
- an operation number: 1 to 999,999;
- a code (item, location, lot, work order, work center, machine, operator, terminal, serial): 1 to 64
  printable characters without surrounding spaces; an event id: 1 to 200; a name or quality standard: up to 200;
- an event's source time: 1970-01-01 to 2999-12-31 (UTC), with a timezone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

MAX_QTY = Decimal(1_000_000_000)
MAX_RATE = Decimal(1_000_000)
MAX_VALUE = Decimal(1_000_000_000_000)
MAX_KWH = Decimal(1_000_000)
MAX_MINUTES = Decimal(1_000_000)
MAX_QTY_PER = Decimal(1_000_000)
MAX_PCT = Decimal(1_000)
MAX_OPERATION = 999_999
CODE_LENGTH = 64
EVENT_ID_LENGTH = 200
TEXT_LENGTH = 200
PLACES = 6
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def _show(number: Decimal) -> str:
    """``number`` as typed, or in scientific notation when it is long (a 1e30 refused is not printed in full)."""
    text = format(number, "f")
    return text if len(text) <= 24 else f"{number:.6e}"


def range_text(minimum: Decimal, maximum: Decimal, *, above: bool = False) -> str:
    low = f"above {minimum:,}" if above else f"{minimum:,}"
    return f"{low} to {maximum:,}"


def out_of_range(number: Decimal, *, maximum: Decimal, minimum: Decimal = Decimal(0), above: bool = False,
                 places: int | None = PLACES) -> str | None:
    """Why ``number`` is outside [``minimum``, ``maximum``] (``above``: minimum excluded) or has more than
    ``places`` decimal places; None when it fits. The text names the range, for the caller to prefix the field."""
    if not number.is_finite():
        return f"{number} is not a finite number"
    if number > maximum or number < minimum or (above and number == minimum):
        return f"{_show(number)} is out of range (allowed: {range_text(minimum, maximum, above=above)})"
    if places is not None:
        exponent = number.as_tuple().exponent
        assert isinstance(exponent, int)
        if -exponent > places and number != number.quantize(Decimal(1).scaleb(-places)):
            return f"{_show(number)} has more than {places} decimal places"
    return None


def too_long(value: str, limit: int) -> str | None:
    """Why ``value`` is longer than ``limit`` characters (its start shown), or None."""
    if len(value) <= limit:
        return None
    return f"{value[:24]!r}... is {len(value)} characters long (at most {limit})"
