"""Explosion: scrap compounding, phantoms, fixed quantities, effectivity boundaries, per-operation materials."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from bom.explosion import MaterialNeed, explode, explode_cached, operation_materials
from bom.model import BomError, BomLine, BomVersion, CycleError, VersionState
from bom.structure import BomIndex
from tests.unit.bom.helpers import JAN1, bom, line

D = Decimal


def test_scrap_compounds_down_the_levels() -> None:
    index = BomIndex([
        bom("FG", line("SA", "2", scrap="10", op=10)),
        bom("SA", line("RM", "3", scrap="5")),
    ])
    exp = explode(index, "FG", D(10), JAN1)
    assert [(r.level, r.component, r.qty) for r in exp.rows] == [(1, "SA", D("22")), (2, "RM", D("69.3"))]
    assert exp.path(1) == ["FG", "SA", "RM"]
    totals = {t.component: (t.qty, t.made) for t in exp.totals()}
    assert totals == {"SA": (D("22"), True), "RM": (D("69.3"), False)}


def test_phantoms_show_in_the_indented_view_but_not_in_totals() -> None:
    index = BomIndex([
        bom("FG", line("KIT", "2", op=20, phantom=True), line("RM1", "1", op=10)),
        bom("KIT", line("RM1", "3"), line("RM2", "1", scrap="50")),
    ])
    exp = explode(index, "FG", D(4), JAN1)
    assert [(r.level, r.component, r.qty, r.phantom) for r in exp.rows] == [
        (1, "KIT", D(8), True), (2, "RM1", D(24), False), (2, "RM2", D(12), False), (1, "RM1", D(4), False),
    ]
    assert {t.component: t.qty for t in exp.totals()} == {"RM1": D(28), "RM2": D(12)}


def test_fixed_quantity_lines_are_not_multiplied_by_the_parent_quantity() -> None:
    index = BomIndex([
        bom("FG", line("SA", "2"), line("JIG", "1", scrap="0", fixed=True)),
        bom("SA", line("GLUE", "0.5", fixed=True), line("RM", "1")),
    ])
    exp = explode(index, "FG", D(100), JAN1)
    qty = {(r.component, r.level): r.qty for r in exp.rows}
    assert qty[("SA", 1)] == D(200)
    assert qty[("JIG", 1)] == D(1)
    assert qty[("GLUE", 2)] == D("0.5")  # once per order of the sub-assembly, not x 200
    assert qty[("RM", 2)] == D(200)


def test_effectivity_valid_to_is_inclusive_and_the_next_revision_starts_the_day_after() -> None:
    index = BomIndex([
        bom("FG", line("OLD", "1"), rev="A", valid_to=date(2026, 3, 31)),
        bom("FG", line("NEW", "1"), rev="B", valid_from=date(2026, 4, 1)),
    ])
    assert explode(index, "FG", D(1), date(2026, 3, 31)).rows[0].component == "OLD"
    assert explode(index, "FG", D(1), date(2026, 4, 1)).rows[0].component == "NEW"
    with pytest.raises(BomError, match="no released BOM of FG is effective on 2025-12-31"):
        explode(index, "FG", D(1), date(2025, 12, 31))


def test_sub_assembly_effectivity_is_resolved_on_the_same_date() -> None:
    index = BomIndex([
        bom("FG", line("SA", "1")),
        bom("SA", line("X", "1"), rev="A", valid_to=date(2026, 5, 31)),
        bom("SA", line("Y", "1"), rev="B", valid_from=date(2026, 6, 1)),
    ])
    assert [r.component for r in explode(index, "FG", D(1), date(2026, 5, 31)).rows] == ["SA", "X"]
    assert [r.component for r in explode(index, "FG", D(1), date(2026, 6, 1)).rows] == ["SA", "Y"]


def test_drafts_and_obsolete_versions_are_never_exploded() -> None:
    index = BomIndex([bom("FG", line("X", "1"), state=VersionState.DRAFT),
                      bom("FG", line("Y", "1"), rev="B", state=VersionState.OBSOLETE)])
    with pytest.raises(BomError, match="no released BOM of FG"):
        explode(index, "FG", D(1), JAN1)


def test_indented_rows_are_pre_order_in_line_order() -> None:
    index = BomIndex([
        bom("FG", line("A", "1"), line("B", "1")),
        bom("A", line("A1", "1"), line("A2", "1")),
        bom("A1", line("A1x", "1")),
        bom("B", line("B1", "1")),
    ])
    exp = explode(index, "FG", D(1), JAN1)
    assert [(r.level, r.component) for r in exp.rows] == [
        (1, "A"), (2, "A1"), (3, "A1x"), (2, "A2"), (1, "B"), (2, "B1"),
    ]
    assert [r.parent_row for r in exp.rows] == [-1, 0, 1, 0, -1, 4]


def test_quantity_must_be_positive() -> None:
    with pytest.raises(BomError, match="quantity must be a positive decimal"):
        explode(BomIndex([bom("FG", line("X", "1"))]), "FG", D(0), JAN1)


def test_cached_explosion_is_the_same_object_until_a_new_snapshot() -> None:
    index = BomIndex([bom("FG", line("X", "2"))])
    first = explode_cached(index, "FG", D(3), JAN1)
    assert explode_cached(index, "FG", D(3), JAN1) is first
    assert explode_cached(index, "FG", D(4), JAN1).rows[0].qty == D(8)
    fresh = index.with_versions([bom("FG", line("Y", "1"), rev="B", valid_from=date(2027, 1, 1))])
    assert explode_cached(fresh, "FG", D(3), JAN1) is not first


def test_operation_materials_per_one_parent_unit_with_phantoms_at_the_phantom_line_operation() -> None:
    index = BomIndex([
        bom("FG", line("RM-STEEL", "1", op=10), line("KIT", "2", scrap="10", op=30, phantom=True),
            line("LABEL", "1", fixed=True, op=30), line("SA", "1", op=20)),
        bom("KIT", line("BOLT", "2", scrap="5"), line("NUT", "2")),
        bom("SA", line("DEEP", "9")),
    ])
    needs = operation_materials(index, index.effective("FG", JAN1), JAN1)  # type: ignore[arg-type]
    assert needs[10] == [MaterialNeed("RM-STEEL", D(1), False)]
    assert needs[20] == [MaterialNeed("SA", D(1), False)]  # a made sub-assembly is consumed, not exploded
    assert sorted(needs[30], key=lambda n: n.component) == [
        MaterialNeed("BOLT", D("4.62"), False),  # 2 x 1.1 x 2 x 1.05
        MaterialNeed("LABEL", D(1), True),
        MaterialNeed("NUT", D("4.4"), False),
    ]


def test_operation_materials_of_the_worked_example() -> None:
    fg = bom("FG-BRACKET", line("RM-STEEL", "1", op=10), line("RM-BOLT", "4", op=30))
    needs = operation_materials(BomIndex([fg]), fg, JAN1)
    assert needs == {10: [MaterialNeed("RM-STEEL", D(1), False)], 30: [MaterialNeed("RM-BOLT", D(4), False)]}


def test_a_cycle_in_corrupted_data_is_reported_not_looped() -> None:
    a = BomVersion.trusted("A", "1", VersionState.RELEASED, JAN1, None, (BomLine("B", D(1), "pcs"),))
    b = BomVersion.trusted("B", "1", VersionState.RELEASED, JAN1, None, (BomLine("A", D(1), "pcs"),))
    with pytest.raises(CycleError, match=r"^BOM cycle as of 2026-01-01: [AB] → [AB] → [AB]$"):
        explode(BomIndex([a, b]), "A", D(1), JAN1)


def test_fixed_line_inside_a_phantom_is_per_order_not_scaled_by_the_phantom_quantity() -> None:
    index = BomIndex([bom("FG", line("KIT", "3", op=20, phantom=True)), bom("KIT", line("MANUAL", "1", fixed=True))])
    needs = operation_materials(index, index.effective("FG", JAN1), JAN1)  # type: ignore[arg-type]
    assert needs == {20: [MaterialNeed("MANUAL", D(1), True)]}
    assert explode(index, "FG", D(5), JAN1).rows[1].qty == D(1)


def test_phantom_without_a_bom_is_consumed_like_any_component() -> None:
    index = BomIndex([bom("FG", line("KIT", "2", op=20, phantom=True))])
    assert operation_materials(index, index.effective("FG", JAN1), JAN1) == {  # type: ignore[arg-type]
        20: [MaterialNeed("KIT", D(2), False)]}
    assert [(t.component, t.qty) for t in explode(index, "FG", D(3), JAN1).totals()] == [("KIT", D(6))]
