"""Cycle refusal with the path, on any day of a new version's window; the model's own rules."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from bom.model import NO_COLUMNS, BomError, BomVersion, CycleError, LineColumns, VersionState
from bom.repository import check_acyclic
from bom.structure import BomIndex
from tests.unit.bom.helpers import JAN1, bom, line


def test_find_cycle_returns_the_path_back_to_its_start() -> None:
    index = BomIndex([bom("A", line("B", "1")), bom("B", line("C", "1")), bom("C", line("A", "1"))])
    assert index.find_cycle(JAN1) == ["A", "B", "C", "A"]


def test_no_cycle_in_a_shared_sub_assembly_dag() -> None:
    index = BomIndex([bom("A", line("B", "1"), line("C", "1")), bom("B", line("D", "1")), bom("C", line("D", "1"))])
    assert index.find_cycle(JAN1) is None


def test_cycle_only_on_some_days_of_the_window_is_refused_naming_the_day() -> None:
    existing = [bom("B", line("X", "1"), rev="1", valid_to=date(2026, 5, 31)),
                bom("B", line("A", "1"), rev="2", valid_from=date(2026, 6, 1))]
    new = bom("A", line("B", "1"))
    index = BomIndex(existing).with_versions([new])
    with pytest.raises(CycleError, match=r"BOM cycle as of 2026-06-01: A → B → A") as err:
        check_acyclic(index, [new])
    assert err.value.path == ["A", "B", "A"]


def test_new_version_whose_window_ends_before_the_cycle_is_accepted() -> None:
    existing = [bom("B", line("A", "1"), rev="2", valid_from=date(2026, 6, 1))]
    new = bom("A", line("B", "1"), valid_to=date(2026, 5, 31))
    check_acyclic(BomIndex(existing).with_versions([new]), [new])


def test_breakpoints_cover_starts_and_the_day_after_ends() -> None:
    index = BomIndex([bom("X", line("Y", "1"), valid_from=date(2026, 2, 1), valid_to=date(2026, 2, 28))])
    assert index.breakpoints(JAN1, None) == [JAN1, date(2026, 2, 1), date(2026, 3, 1)]
    assert index.breakpoints(JAN1, date(2026, 2, 15)) == [JAN1, date(2026, 2, 1)]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ((line("FG", "1"),), "BOM FG rev A line FG: an item cannot be its own component"),
        ((line("X", "0"),), "qty_per must be a positive decimal"),
        ((line("X", "1", scrap="-1"),), "scrap_pct must be a non-negative decimal"),
        ((line("X", "1", op=10), line("X", "2", op=10)), "lists component X twice at operation 10"),
    ],
)
def test_invalid_lines_are_refused(lines: tuple, message: str) -> None:
    with pytest.raises(BomError, match=message):
        bom("FG", *lines)


def test_same_component_at_two_operations_is_two_lines() -> None:
    version = bom("FG", line("X", "1", op=10), line("X", "2", op=20))
    assert [ln.key for ln in version.lines] == [("X", 10), ("X", 20)]
    assert version.lines[1].gross_qty == Decimal(2)


def test_same_content_ignores_line_order_only() -> None:
    a = bom("FG", line("X", "1"), line("Y", "2"))
    assert a.same_content(bom("FG", line("Y", "2"), line("X", "1")))
    assert not a.same_content(bom("FG", line("Y", "2"), line("X", "1.5")))
    assert not a.same_content(bom("FG", line("X", "1"), line("Y", "2"), valid_to=date(2026, 12, 31)))


def test_a_version_held_as_columns_equals_the_one_held_as_lines() -> None:
    lines = (line("RM2", "1.5", "2.5", 20, phantom=True), line("RM1", "0.000001", fixed=True), line("RM3", "4"))
    built = bom("FG", *lines)
    held = BomVersion.released_columns("FG", "A", JAN1, None, LineColumns.of(lines))
    assert held == built and hash(held) == hash(built)
    assert held.columns.components == ("RM2", "RM1", "RM3")
    assert held.lines == lines
    assert held.lines is held.lines  # built once
    assert built.columns == held.columns
    assert BomVersion.released_columns("FG", "A", JAN1, None, NO_COLUMNS).lines == ()
    with pytest.raises(AttributeError, match="immutable"):
        held.item = "X"  # type: ignore[misc]
    with pytest.raises(ValueError, match="not both"):
        BomVersion("FG", "A", VersionState.RELEASED, JAN1, None, lines, columns=LineColumns.of(lines))
