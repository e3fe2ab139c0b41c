"""Version diff: lines added, removed and changed between two revisions of one item.

Lines are matched by (component, operation); a component that appears exactly once on each side but at
another operation is one changed line (its operation changed), not a removal plus an addition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bom.model import BomError, BomLine, BomVersion

FIELDS = ("qty_per", "uom", "scrap_pct", "operation", "phantom", "fixed_qty")


@dataclass(frozen=True, slots=True)
class LineChange:
    component: str
    operation: int | None  # in the newer revision
    changes: dict[str, tuple[Any, Any]]  # field -> (old, new)


@dataclass(frozen=True, slots=True)
class BomDiff:
    item: str
    old_revision: str
    new_revision: str
    header: dict[str, tuple[Any, Any]]  # state / valid_from / valid_to changes
    added: tuple[BomLine, ...]
    removed: tuple[BomLine, ...]
    changed: tuple[LineChange, ...]

    @property
    def empty(self) -> bool:
        return not (self.header or self.added or self.removed or self.changed)


def diff(old: BomVersion, new: BomVersion) -> BomDiff:
    if old.item != new.item:
        raise BomError(f"cannot compare BOMs of different items: {old.item} and {new.item}")
    header = {
        name: (getattr(old, name), getattr(new, name))
        for name in ("state", "valid_from", "valid_to")
        if getattr(old, name) != getattr(new, name)
    }
    old_by_key = {line.key: line for line in old.lines}
    new_by_key = {line.key: line for line in new.lines}
    pairs = [(old_by_key[k], new_by_key[k]) for k in old_by_key if k in new_by_key]
    removed = [line for k, line in old_by_key.items() if k not in new_by_key]
    added = [line for k, line in new_by_key.items() if k not in old_by_key]
    # A component moved to another operation: one line on each side for it -> a change.
    for component in sorted({line.component for line in removed} & {line.component for line in added}):
        olds = [line for line in removed if line.component == component]
        news = [line for line in added if line.component == component]
        if len(olds) == 1 and len(news) == 1:
            pairs.append((olds[0], news[0]))
            removed.remove(olds[0])
            added.remove(news[0])
    changed = []
    for before, after in pairs:
        fields = {f: (getattr(before, f), getattr(after, f)) for f in FIELDS if getattr(before, f) != getattr(after, f)}
        if fields:
            changed.append(LineChange(after.component, after.operation, fields))
    changed.sort(key=lambda c: (c.component, c.operation or 0))
    return BomDiff(
        old.item, old.revision, new.revision, header,
        tuple(sorted(added, key=_order)), tuple(sorted(removed, key=_order)), tuple(changed),
    )


def _order(line: BomLine) -> tuple[str, int]:
    return (line.component, line.operation or 0)
