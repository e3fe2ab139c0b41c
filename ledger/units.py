"""Units of measure and how many decimals a quantity of each may have (pcs 0, kg 3, ...).

A quantity with more places than its unit allows is refused with the unit named, wherever it enters: balance
imports, manual moves, events (good / scrap / rework of the order's item). Units not in the table allow the
ledger's six places (``QTY_PLACES``). Unit codes compare without case ("PCS" is "pcs").
"""

from __future__ import annotations

from decimal import Decimal

from ledger.model import QTY_PLACES, decimal_places
from mes_common.errors import DomainError
from mes_common.money import fmt_qty

UNIT_PLACES: dict[str, int] = {
    # counted units: whole numbers
    "pcs": 0, "pc": 0, "ea": 0, "each": 0, "unit": 0, "units": 0, "set": 0, "pair": 0, "box": 0, "roll": 0,
    # weights, lengths, areas, volumes, energy, time: three places
    "kg": 3, "g": 3, "t": 3, "lb": 3, "m": 3, "mm": 3, "cm": 3, "km": 3, "ft": 3, "m2": 3, "m3": 3,
    "l": 3, "ml": 3, "kwh": 3, "h": 3, "min": 3,
}  # fmt: skip


class UnitPlaces(DomainError):
    """A quantity with more decimals than its unit of measure allows."""

    code = "unit_places"


def unit_places(uom: str) -> int:
    """How many decimal places a quantity counted in ``uom`` may have."""
    return UNIT_PLACES.get(uom.lower(), QTY_PLACES)


def unit_problem(qty: Decimal, uom: str) -> str | None:
    """Why ``qty`` does not fit ``uom`` (``"2.5 is not a whole number of pcs"``), or None when it does."""
    places = unit_places(uom)
    if decimal_places(qty) <= places or qty == qty.quantize(Decimal(1).scaleb(-places)):
        return None
    if places == 0:
        return f"{fmt_qty(qty)} is not a whole number of {uom}"
    return f"{fmt_qty(qty)} has more than {places} decimal places for a quantity in {uom}"


def check_unit(qty: Decimal, uom: str, what: str) -> None:
    """Raise ``UnitPlaces`` (``what``: the field or the move, named first) when ``qty`` breaks ``uom``."""
    problem = unit_problem(qty, uom)
    if problem is not None:
        raise UnitPlaces(f"{what}: {problem}")
