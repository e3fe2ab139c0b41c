"""The released BOM structure in memory: which version of each item is effective on a day, and cycles.

``BomIndex`` is an immutable snapshot of released versions (built by the repository, or by hand in
tests). Everything derived from it (explosions, where-used) may be cached as long as the snapshot is:
released versions never change, and the repository hands out a new snapshot after any release or
obsolescence.

Invariants:
- At most one released version of an item is effective on a day (overlaps are refused at release).
- ``find_cycle`` returns the path of a cycle ``A → B → C → A`` in the effective structure of a day, or None.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from itertools import repeat
from typing import Any, Protocol

from bom.model import BomVersion, VersionState, gross_qty

# A line seen from its component: (parent, revision, qty_per, operation, phantom, gross qty per parent unit with
# scrap, the parent's own parent lines). A plain tuple, not a named one: the where-used walk unpacks one per row,
# and unpacking has a fast path only for exact tuples. The last field links straight to the next level up.
ParentLine = tuple[str, str, Decimal, "int | None", bool, Decimal, "list[ParentLine]"]


class BomLookup(Protocol):
    def effective(self, item: str, day: date) -> BomVersion | None: ...


class BomIndex:
    """Released BOM versions by item, each item's versions sorted by ``valid_from``."""

    __slots__ = ("_by_item", "_parent_lines", "_where_used", "memo", "token")

    def __init__(self, versions: Iterable[BomVersion], token: str | None = None) -> None:
        by_item: dict[str, list[BomVersion]] = {}
        for version in versions:
            if version.state == VersionState.RELEASED:
                by_item.setdefault(version.item, []).append(version)
        for item_versions in by_item.values():
            item_versions.sort(key=lambda v: v.valid_from)
        self._by_item = by_item
        self._where_used: dict[date, dict[str, list[tuple[BomVersion, int]]]] = {}
        self._parent_lines: dict[date, dict[str, list[ParentLine]]] = {}
        # Results derived from this snapshot (explosions): valid as long as the snapshot is.
        self.memo: dict[Any, Any] = {}
        self.token = token

    def __len__(self) -> int:
        return len(self._by_item)

    def items(self) -> list[str]:
        return list(self._by_item)

    def versions(self, item: str) -> list[BomVersion]:
        return list(self._by_item.get(item, ()))

    def effective(self, item: str, day: date) -> BomVersion | None:
        for version in self._by_item.get(item, ()):
            if version.valid_from <= day and (version.valid_to is None or day <= version.valid_to):
                return version
        return None

    def effective_map(self, day: date) -> dict[str, BomVersion]:
        """item -> the version effective on ``day``, for every item with one (cached per day)."""
        key = ("effective_map", day)
        found = self.memo.get(key)
        if found is None:
            found = {}
            for item in self._by_item:
                version = self.effective(item, day)
                if version is not None:
                    found[item] = version
            self.memo[key] = found
        return found

    def with_versions(self, versions: Iterable[BomVersion]) -> BomIndex:
        """A new index where ``versions`` are added (an existing same item + revision is replaced)."""
        new = {(v.item, v.revision): v for v in versions}
        kept = [v for vs in self._by_item.values() for v in vs if (v.item, v.revision) not in new]
        return BomIndex([*kept, *new.values()])

    def parents_of(self, day: date) -> dict[str, list[tuple[BomVersion, int]]]:
        """component -> [(parent version, line index)] for the structure effective on ``day`` (cached)."""
        cached = self._where_used.get(day)
        if cached is not None:
            return cached
        reverse: dict[str, list[tuple[BomVersion, int]]] = {}
        for item in self._by_item:
            version = self.effective(item, day)
            if version is None:
                continue
            for index, line in enumerate(version.lines):
                reverse.setdefault(line.component, []).append((version, index))
        if len(self._where_used) > 32:
            self._where_used.clear()
        self._where_used[day] = reverse
        return reverse

    def parent_lines(self, day: date) -> dict[str, list[ParentLine]]:
        """component -> the lines using it in the structure effective on ``day`` (``ParentLine``), sorted by parent
        item and line position (the order ``parents_of`` gives once sorted), each line's gross quantity worked
        out once and linked to its parent's own lines. Built once per snapshot and day, so a where-used walk
        neither sorts, computes scrap nor looks a parent up. Read-only for callers."""
        found = self._parent_lines.get(day)
        if found is not None:
            return found
        effective = self.effective_map(day)
        reverse: dict[str, list[ParentLine]] = {}
        for item in sorted(effective):
            version = effective[item]
            above = reverse.setdefault(item, [])
            components, qtys, _, scraps, operations, phantoms, _ = version.columns
            gross = map(gross_qty, qtys, scraps)
            for component, line in zip(components, zip(repeat(item), repeat(version.revision), qtys, operations,
                                                       phantoms, gross, repeat(above)), strict=False):
                below = reverse.get(component)
                if below is None:
                    reverse[component] = [line]
                else:
                    below.append(line)
        if len(self._parent_lines) > 32:
            self._parent_lines.clear()
        self._parent_lines[day] = reverse
        return reverse

    def breakpoints(self, start: date, end: date | None) -> list[date]:
        """The days in ``[start, end]`` on which the effective structure may change, ``start`` first."""
        days = {start}
        for item_versions in self._by_item.values():
            for version in item_versions:
                candidates = [version.valid_from]
                if version.valid_to is not None:
                    candidates.append(version.valid_to + timedelta(days=1))
                for day in candidates:
                    if start <= day and (end is None or day <= end):
                        days.add(day)
        return sorted(days)

    def find_cycle(self, day: date) -> list[str] | None:
        """A cycle in the structure effective on ``day`` as a path that returns to its start, or None."""
        white, gray, black = 0, 1, 2
        colour: dict[str, int] = {}
        for root in sorted(self._by_item):
            if colour.get(root, white) != white:
                continue
            colour[root] = gray
            stack: list[tuple[str, list[str]]] = [(root, self._children(root, day))]
            while stack:
                node, children = stack[-1]
                if not children:
                    colour[node] = black
                    stack.pop()
                    continue
                child = children.pop()
                state = colour.get(child, white)
                if state == gray:
                    path = [entry[0] for entry in stack]
                    return [*path[path.index(child):], child]
                if state == white:
                    colour[child] = gray
                    stack.append((child, self._children(child, day)))
        return None

    def _children(self, item: str, day: date) -> list[str]:
        version = self.effective(item, day)
        if version is None:
            return []
        return sorted(set(version.columns.components), reverse=True)
