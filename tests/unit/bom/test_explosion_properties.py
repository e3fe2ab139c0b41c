"""Property: on random acyclic BOMs the fast explosion agrees with a naive recursive definition."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from bom.explosion import Explosion, explode, explode_plain, operation_materials
from bom.model import BomLine, BomVersion, VersionState
from bom.structure import BomIndex

JAN1 = date(2026, 1, 1)
QTYS = st.sampled_from([Decimal("0.5"), Decimal(1), Decimal(2), Decimal("3.25")])
SCRAPS = st.sampled_from([Decimal(0), Decimal("1.5"), Decimal(10)])


@st.composite
def structures(draw: st.DrawFn) -> BomIndex:
    """Items I0..In; Ik may only use items with a larger number, so the structure is acyclic (shared
    sub-assemblies allowed)."""
    n = draw(st.integers(min_value=2, max_value=8))
    versions = []
    for k in range(n - 1):
        children = draw(st.lists(st.integers(min_value=k + 1, max_value=n - 1), min_size=1, max_size=3, unique=True))
        lines = tuple(
            BomLine(f"I{c}", draw(QTYS), "pcs", draw(SCRAPS), draw(st.sampled_from([None, 10, 20])),
                    draw(st.booleans()), draw(st.booleans()))
            for c in children
        )
        if draw(st.booleans()) or k == 0:
            versions.append(BomVersion(f"I{k}", "A", VersionState.RELEASED, JAN1, None, lines))
    return BomIndex(versions)


def naive_totals(index: BomIndex, item: str, qty: Decimal, totals: dict[str, Decimal]) -> None:
    version = index.effective(item, JAN1)
    assert version is not None
    for line in version.lines:
        need = line.gross_qty if line.fixed_qty else qty * line.gross_qty
        made = index.effective(line.component, JAN1) is not None
        if not (line.phantom and made):
            totals[line.component] = totals.get(line.component, Decimal(0)) + need
        if made:
            naive_totals(index, line.component, need, totals)


@settings(max_examples=150, deadline=None)
@given(structures(), QTYS)
def test_totals_match_the_naive_recursive_definition(index: BomIndex, qty: Decimal) -> None:
    expected: dict[str, Decimal] = {}
    naive_totals(index, "I0", qty, expected)
    exp = explode(index, "I0", qty, JAN1)
    assert {t.component: t.qty for t in exp.totals()} == expected
    for i, row in enumerate(exp.rows):
        assert len(exp.path(i)) == row.level + 1


@settings(max_examples=150, deadline=None)
@given(structures())
def test_operation_materials_equal_the_level_one_rows_with_phantoms_flattened(index: BomIndex) -> None:
    """Per one unit: every non-phantom row reached from level 1 through phantom rows only."""
    exp = explode(index, "I0", Decimal(1), JAN1)
    expected: dict[str, Decimal] = {}
    parents = {row.parent_row for row in exp.rows}
    for i, row in enumerate(exp.rows):
        if row.phantom and i in parents:
            continue
        ancestors = [exp.rows[j] for j in _chain(exp, i)[1:]]
        if all(a.phantom for a in ancestors):
            expected[row.component] = expected.get(row.component, Decimal(0)) + row.qty
    root = index.effective("I0", JAN1)
    assert root is not None
    got: dict[str, Decimal] = {}
    for needs in operation_materials(index, root, JAN1).values():
        for need in needs:
            got[need.component] = got.get(need.component, Decimal(0)) + need.qty_per_unit
    assert got == expected


def _chain(exp: Explosion, index: int) -> list[int]:
    chain = []
    while index >= 0:
        chain.append(index)
        index = exp.rows[index].parent_row
    return chain


class _LinesOnly:
    """A lookup that is not a snapshot: the explosion keeps its plans for one call."""

    def __init__(self, index: BomIndex) -> None:
        self.index = index

    def effective(self, item: str, day: date) -> BomVersion | None:
        return self.index.effective(item, day)


@settings(max_examples=150, deadline=None)
@given(structures(), QTYS)
def test_columnar_explosion_equals_the_line_by_line_walk(index: BomIndex, qty: Decimal) -> None:
    """``explode`` (columns, runs of leaf lines, plans kept on the snapshot) equals ``explode_plain`` row for row,
    quantities written the same way, cold, warm and through a lookup that is not a snapshot."""
    reference = explode_plain(index, "I0", qty, JAN1)
    for lookup in (index, index, _LinesOnly(index)):
        got = explode(lookup, "I0", qty, JAN1)  # type: ignore[arg-type]
        assert got.rows == reference.rows
        assert [str(row.qty) for row in got.rows] == [str(row.qty) for row in reference.rows]
