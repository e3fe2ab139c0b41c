"""Version diff and multi-level where-used."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest

from bom.diff import diff
from bom.structure import BomIndex
from bom.whereused import where_used, where_used_from
from tests.unit.bom.helpers import JAN1, bom, line

D = Decimal


def test_diff_lists_added_removed_and_changed_with_old_and_new_values() -> None:
    old = bom("FG", line("STEEL", "1", op=10), line("BOLT", "4", op=30), line("GLUE", "1", op=30), rev="A")
    new = bom("FG", line("STEEL", "1.2", scrap="5", op=10), line("BOLT", "4", op=20), line("NUT", "4", op=30),
              rev="B", valid_from=date(2026, 6, 1))
    result = diff(old, new)
    assert [ln.component for ln in result.added] == ["NUT"]
    assert [ln.component for ln in result.removed] == ["GLUE"]
    changes = {c.component: c.changes for c in result.changed}
    assert changes == {
        "STEEL": {"qty_per": (D(1), D("1.2")), "scrap_pct": (D(0), D(5))},
        "BOLT": {"operation": (30, 20)},
    }
    assert result.header == {"valid_from": (JAN1, date(2026, 6, 1))}
    assert not result.empty


def test_diff_of_identical_revisions_is_empty() -> None:
    a = bom("FG", line("X", "1"), rev="A")
    assert diff(a, bom("FG", line("X", "1"), rev="B")).empty


def test_where_used_walks_up_every_level_with_compounded_quantities() -> None:
    index = BomIndex([
        bom("FG1", line("SA", "2", scrap="10")),
        bom("FG2", line("SA", "1"), line("RM", "5")),
        bom("SA", line("RM", "3")),
    ])
    rows = where_used(index, "RM", JAN1)
    assert [(r.level, r.parent, r.component, r.qty) for r in rows] == [
        (1, "FG2", "RM", D(5)),
        (1, "SA", "RM", D(3)),
        (2, "FG1", "SA", D("6.6")),
        (2, "FG2", "SA", D(3)),
    ]
    assert rows[2].path == ("RM", "SA", "FG1")


def test_where_used_respects_effectivity() -> None:
    index = BomIndex([bom("FG", line("RM", "1"), valid_to=date(2026, 1, 31))])
    assert len(where_used(index, "RM", date(2026, 1, 31))) == 1
    assert where_used(index, "RM", date(2026, 2, 1)) == []


@pytest.mark.parametrize("seed", range(5))
def test_memoised_where_used_equals_the_plain_walk(seed: int) -> None:
    """Random acyclic structures (an item only uses items of a lower rank), shared sub-assemblies, scrap."""
    rng = random.Random(seed)
    codes = [f"I{n}" for n in range(30)]
    versions = []
    for rank, code in enumerate(codes[10:], start=10):
        used = rng.sample(codes[:rank], rng.randint(1, 5))
        versions.append(bom(code, *(line(c, str(rng.randint(1, 8) / D(4)), scrap=rng.choice(["0", "2.5", "10"]))
                                    for c in used)))
    index = BomIndex(versions)
    for code in codes:
        plain = where_used_from(index.parents_of(JAN1), code, D(1), 1, (code,), JAN1)
        assert where_used(index, code, JAN1) == plain
        assert where_used(index, code, JAN1) == plain  # memoised
