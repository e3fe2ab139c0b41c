"""Multi-level explosion (indented and summarised) and the per-operation materials of one parent.

Rules (SPEC section 2):
- A line needs ``parent qty x qty_per x (1 + scrap_pct/100)``; a fixed-quantity line needs
  ``qty_per x (1 + scrap_pct/100)`` whatever the parent quantity. Scrap compounds down the levels
  because each level multiplies the quantity already grossed up above it.
- A component with a released BOM effective on the date is exploded further; one without is a leaf.
- Phantoms are exploded through: the indented view shows the phantom row (``phantom=True``), the
  summarised totals do not count it, and ``operation_materials`` charges its components at the
  phantom line's operation of the parent. A phantom line whose item has no effective BOM cannot be
  exploded through: it is counted and consumed like any other component.
- Effectivity: the version effective on ``as_of`` (valid_from and valid_to both inclusive).

Quantities are exact ``Decimal`` (38 significant digits); nothing here rounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Context, Decimal, localcontext
from itertools import repeat
from typing import NamedTuple

from bom.model import BomError, BomVersion, CycleError, gross_qty
from bom.structure import BomIndex, BomLookup

_CONTEXT = Context(prec=38)
# A released structure is acyclic; deeper than this means corrupted data, reported as a cycle.
MAX_DEPTH = 500


@dataclass(frozen=True, slots=True)
class MaterialNeed:
    component: str
    qty_per_unit: Decimal
    fixed_qty: bool


class ExplosionRow(NamedTuple):
    level: int
    parent_row: int  # index of the parent row in ``Explosion.rows``; -1 under the exploded item
    component: str
    qty: Decimal
    uom: str
    scrap_pct: Decimal
    operation: int | None
    phantom: bool
    fixed_qty: bool
    revision: str  # revision of the BOM this line comes from


@dataclass(frozen=True, slots=True)
class TotalRow:
    component: str
    qty: Decimal
    uom: str
    made: bool  # has its own effective BOM (a sub-assembly), else bought / leaf


@dataclass(frozen=True, slots=True)
class Explosion:
    item: str
    revision: str
    qty: Decimal
    as_of: date
    rows: tuple[ExplosionRow, ...]

    def path(self, index: int) -> list[str]:
        """Item codes from the exploded item down to row ``index``."""
        codes: list[str] = []
        while index >= 0:
            row = self.rows[index]
            codes.append(row.component)
            index = row.parent_row
        codes.append(self.item)
        return codes[::-1]

    def totals(self) -> list[TotalRow]:
        """Total quantity per component over all levels, phantoms exploded through, sorted by component."""
        sums: dict[str, Decimal] = {}
        uoms: dict[str, str] = {}
        has_children: set[int] = set()
        for row in self.rows:
            if row.parent_row >= 0:
                has_children.add(row.parent_row)
        made: set[str] = set()
        with localcontext(_CONTEXT):
            for index, row in enumerate(self.rows):
                if row.phantom and index in has_children:
                    continue
                sums[row.component] = sums.get(row.component, Decimal(0)) + row.qty
                uoms.setdefault(row.component, row.uom)
                if index in has_children:
                    made.add(row.component)
        return [TotalRow(c, sums[c], uoms[c], c in made) for c in sorted(sums)]


def explode(lookup: BomLookup, item: str, qty: Decimal, as_of: date) -> Explosion:
    """Indented multi-level explosion of ``qty`` x ``item`` as of ``as_of`` (pre-order, lines in BOM order).

    Works a version's lines as columns (``_Plan``, derived once per snapshot and day on a ``BomIndex``): the
    rows between two lines that explode further are built by one ``map`` over the columns instead of a Python
    loop per line. ``explode_plain`` is the line-by-line walk it equals (tests prove it on random structures
    and on the benchmark's two shapes)."""
    root = _root(lookup, item, qty, as_of)
    child_of, plans = _sources(lookup, as_of)
    rows: list[ExplosionRow] = []
    with localcontext(_CONTEXT):
        def plan_of(version: BomVersion) -> _Plan:
            plan = plans.get(version.item)
            if plan is None:
                plan = plans[version.item] = _plan(version, child_of)
            return plan

        _descend_columns(rows, plan_of(root), qty, plan_of, as_of, item)
    return Explosion(item, root.revision, qty, as_of, tuple(rows))


def explode_plain(lookup: BomLookup, item: str, qty: Decimal, as_of: date) -> Explosion:
    """The reference ``explode`` equals: one line at a time, one ``effective`` look-up per line."""
    root = _root(lookup, item, qty, as_of)
    rows: list[ExplosionRow] = []

    def child_of(code: str) -> BomVersion | None:
        return lookup.effective(code, as_of)

    with localcontext(_CONTEXT):
        _descend(rows, root, qty, 1, -1, child_of, as_of, item)
    return Explosion(item, root.revision, qty, as_of, tuple(rows))


def _root(lookup: BomLookup, item: str, qty: Decimal, as_of: date) -> BomVersion:
    root = lookup.effective(item, as_of)
    if root is None:
        raise BomError(f"no released BOM of {item} is effective on {as_of.isoformat()}")
    if not isinstance(qty, Decimal) or qty <= 0:
        raise BomError(f"explode {item}: quantity must be a positive decimal, got {qty!r}")
    return root


def _sources(lookup: BomLookup, as_of: date) -> tuple[Callable[[str], BomVersion | None], dict[str, _Plan]]:
    """Who has a BOM on the day, and where the versions' plans are kept: on a snapshot, in its memo (valid as
    long as the snapshot is), otherwise for this one explosion."""
    if isinstance(lookup, BomIndex):
        key = ("explosion plans", as_of)
        plans = lookup.memo.get(key)
        if plans is None:
            plans = lookup.memo[key] = {}
        return lookup.effective_map(as_of).get, plans

    def child_of(code: str) -> BomVersion | None:
        return lookup.effective(code, as_of)

    return child_of, {}


MEMO_SIZE = 64


def explode_cached(index: BomIndex, item: str, qty: Decimal, as_of: date) -> Explosion:
    """``explode`` memoised on the released snapshot: the same question costs a dictionary lookup until
    the next release (the repository then hands out a new snapshot with an empty memo)."""
    key = ("explode", item, qty, as_of)
    found = index.memo.get(key)
    if found is None:
        found = explode(index, item, qty, as_of)
        if len(index.memo) >= MEMO_SIZE:
            index.memo.pop(next(iter(index.memo)))
        index.memo[key] = found
    return found


class _Plan(NamedTuple):
    """One version's lines as columns, and which of them explode further on the day (their position and BOM)."""

    revision: str
    components: tuple[str, ...]
    gross: tuple[Decimal, ...]  # per parent unit (per order when fixed), scrap included
    uoms: tuple[str, ...]
    scraps: tuple[Decimal, ...]
    operations: tuple[int | None, ...]
    phantoms: tuple[bool, ...]
    fixed: tuple[bool, ...]
    any_fixed: bool
    children: tuple[tuple[int, BomVersion], ...]


def _plan(version: BomVersion, child_of: Callable[[str], BomVersion | None]) -> _Plan:
    components, qtys, uoms, scraps, operations, phantoms, fixed = version.columns
    gross = qtys
    if any(scraps):
        gross = tuple(map(gross_qty, qtys, scraps))
    children = []
    for position, child in enumerate(map(child_of, components)):
        if child is not None:
            children.append((position, child))
    return _Plan(version.revision, components, gross, uoms, scraps, operations, phantoms, fixed, any(fixed),
                 tuple(children))


def _descend_columns(
    rows: list[ExplosionRow],
    root: _Plan,
    qty: Decimal,
    plan_of: Callable[[BomVersion], _Plan],
    as_of: date,
    item: str,
) -> None:
    # Explicit stack (deep structures must not hit Python's recursion limit): (plan, parent quantity, level,
    # parent row, first line not yet emitted, next child of the plan).
    stack = [(root, qty, 1, -1, 0, 0)]
    append, extend = rows.append, rows.extend
    while stack:
        plan, parent_qty, level, parent_index, start, next_child = stack.pop()
        if level > MAX_DEPTH:
            raise CycleError(_shortest_cycle(_path_up(rows, parent_index, item)), as_of)
        children = plan.children
        child: BomVersion | None = None
        if next_child < len(children):
            position, child = children[next_child]
            end = position + 1  # the lines before the child, and the child's own row
        else:
            end = len(plan.components)
        if start == end:
            continue
        if end - start == 1:  # a lone line (a sub-assembly right after another): no slices for one row
            need = plan.gross[start] if plan.fixed[start] else parent_qty * plan.gross[start]
            append(ExplosionRow(level, parent_index, plan.components[start], need, plan.uoms[start],
                                plan.scraps[start], plan.operations[start], plan.phantoms[start], plan.fixed[start],
                                plan.revision))
        else:
            gross = plan.gross[start:end]
            if plan.any_fixed:
                needs = [g if f else parent_qty * g for g, f in zip(gross, plan.fixed[start:end], strict=True)]
            else:
                needs = list(map(parent_qty.__mul__, gross))
            need = needs[-1]
            # ``_make`` (one argument) costs less to call than the ten-argument constructor; both are the record's.
            extend(map(ExplosionRow._make, zip(
                repeat(level), repeat(parent_index), plan.components[start:end], needs, plan.uoms[start:end],
                plan.scraps[start:end], plan.operations[start:end], plan.phantoms[start:end], plan.fixed[start:end],
                repeat(plan.revision),
            )))
        if child is not None:
            stack.append((plan, parent_qty, level, parent_index, end, next_child + 1))
            stack.append((plan_of(child), need, level + 1, len(rows) - 1, 0, 0))


def _descend(
    rows: list[ExplosionRow],
    version: BomVersion,
    parent_qty: Decimal,
    level: int,
    parent_index: int,
    child_of: Callable[[str], BomVersion | None],
    as_of: date,
    item: str,
) -> None:
    # Explicit stack of line iterators: deep structures must not hit Python's recursion limit.
    stack = [(version, parent_qty, level, parent_index, 0)]
    append = rows.append
    while stack:
        version, parent_qty, level, parent_index, position = stack.pop()
        if level > MAX_DEPTH:
            raise CycleError(_shortest_cycle(_path_up(rows, parent_index, item)), as_of)
        lines = version.lines
        revision = version.revision
        count = len(lines)
        while position < count:
            line = lines[position]
            position += 1
            component, qty_per, uom, scrap_pct, operation, phantom, fixed = line
            gross = gross_qty(qty_per, scrap_pct)
            need = gross if fixed else parent_qty * gross
            index = len(rows)
            append(ExplosionRow(level, parent_index, component, need, uom, scrap_pct, operation, phantom, fixed,
                                revision))
            child = child_of(component)
            if child is not None:
                stack.append((version, parent_qty, level, parent_index, position))
                stack.append((child, need, level + 1, index, 0))
                break


def _shortest_cycle(path: list[str]) -> list[str]:
    """The innermost repetition at the end of a too-deep path: ``[.., A, B, A]`` -> ``[A, B, A]``."""
    for end in range(len(path) - 1, 0, -1):
        for start in range(end - 1, -1, -1):
            if path[start] == path[end]:
                return path[start:end + 1]
    return path


def _path_up(rows: list[ExplosionRow], index: int, item: str) -> list[str]:
    codes: list[str] = []
    while index >= 0:
        codes.append(rows[index].component)
        index = rows[index].parent_row
    codes.append(item)
    return codes[::-1]


def operation_materials(lookup: BomLookup, bom: BomVersion, as_of: date) -> dict[int | None, list[MaterialNeed]]:
    """Components consumed at each operation of ``bom``'s parent, per ONE parent unit, scrap included.

    A phantom line's components (recursively) are consumed at the phantom line's operation, their
    quantities compounded by the phantom line's gross quantity; a fixed phantom makes its
    components fixed too, and a fixed line inside a phantom stays its own quantity per order. A phantom
    without an effective BOM is consumed itself. Needs of one component at one operation are summed.
    """
    result: dict[int | None, dict[tuple[str, bool], Decimal]] = {}
    with localcontext(_CONTEXT):
        _collect(lookup, bom, as_of, Decimal(1), None, False, result, [bom.item], use_line_op=True)
    return {
        op: [MaterialNeed(component, qty, fixed) for (component, fixed), qty in needs.items()]
        for op, needs in result.items()
    }


def _collect(
    lookup: BomLookup,
    version: BomVersion,
    as_of: date,
    factor: Decimal,
    operation: int | None,
    fixed: bool,
    result: dict[int | None, dict[tuple[str, bool], Decimal]],
    path: list[str],
    *,
    use_line_op: bool,
) -> None:
    for line in version.lines:
        op = line.operation if use_line_op else operation
        line_fixed = fixed or line.fixed_qty
        # A fixed line is per order of its own parent, phantom or not: never scaled by the quantity above.
        qty = line.gross_qty if line.fixed_qty else factor * line.gross_qty
        if line.phantom:
            child = lookup.effective(line.component, as_of)
            if child is not None:
                if line.component in path:
                    raise CycleError([*path, line.component], as_of)
                _collect(lookup, child, as_of, qty, op, line_fixed, result,
                         [*path, line.component], use_line_op=False)
                continue
        needs = result.setdefault(op, {})
        key = (line.component, line_fixed)
        needs[key] = needs.get(key, Decimal(0)) + qty
