"""``backflush_qty``: component quantities in their unit's decimals by cumulative rounding up, beside the plain
reference (the exact need, ``component_qty``) for units with the ledger's six places."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from hypothesis import given
from hypothesis import strategies as st

from wip_costing.costing import backflush_qty, component_qty
from wip_costing.model import MaterialSpec

D = Decimal


def test_one_bar_makes_two_parts() -> None:
    bar = MaterialSpec("RM-BAR", D("0.5"), uom="pcs")
    assert [backflush_qty(bar, D(done), D(1), done == 0) for done in range(4)] == [D(1), D(0), D(1), D(0)]


def test_kilograms_round_up_to_grams_and_the_fixed_quantity_comes_once() -> None:
    glue = MaterialSpec("RM-GLUE", D("0.0004"), D("0.25"), uom="kg")
    assert backflush_qty(glue, D(0), D(1), True) == D("0.251")  # 0.001 (0.0004 up) + the fixed 0.25
    assert backflush_qty(glue, D(1), D(1), False) == D(0)  # 0.0008 kg in all: still the first gram
    assert backflush_qty(glue, D(2), D(1), False) == D("0.001")  # 0.0012 kg: the second gram


def test_units_without_fewer_places_issue_the_exact_need() -> None:
    for uom in ("", "unknown-unit"):
        oil = MaterialSpec("RM-OIL", D("0.3333333"), uom=uom)
        assert backflush_qty(oil, D(5), D(3), False) == component_qty(D("0.3333333") * 3)


@given(st.decimals(min_value=D("0.001"), max_value=D(50), places=3),
       st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=30))
def test_the_sum_of_the_issues_is_the_total_need_rounded_up(qty_per: Decimal, batches: list[int]) -> None:
    need = MaterialSpec("RM-X", qty_per, uom="pcs")
    done, issued = D(0), D(0)
    for taken in batches:
        part = backflush_qty(need, done, D(taken), done == 0)
        assert part >= 0 and part == part.to_integral_value()
        issued += part
        done += taken
        assert issued == (qty_per * done).to_integral_value(rounding=ROUND_CEILING)
