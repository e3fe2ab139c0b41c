"""BOM versions and lines: the pure records every other BOM module works on.

Invariants (checked when built, so every instance is valid):
- A line's quantity per parent unit is positive; scrap % is non-negative; the operation, when given,
  is a positive integer. A line consumes ``qty_per x (1 + scrap_pct / 100)`` per parent unit
  (or per order, for a fixed-quantity line).
- A version never lists its own item, nor one component twice at the same operation (the pair
  ``(component, operation)`` identifies a line, which is what the diff compares).
- States and effectivity windows follow ``routing.versioning`` (``valid_to`` inclusive).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from mes_common.errors import DomainError
from routing.versioning import VersionState, check_window, effective_on

__all__ = ["BomError", "BomLine", "BomVersion", "CycleError", "LineColumns", "LineKey", "VersionState", "gross_qty"]

ZERO = Decimal(0)
HUNDRED = Decimal(100)
LineKey = tuple[str, int | None]


class BomError(DomainError):
    """An invalid BOM or a refused BOM command: names item, revision, component and the rule broken."""

    code = "bad_bom"


class CycleError(BomError):
    """Releasing a version would make an item its own component; the message shows the path."""

    code = "bom_cycle"

    def __init__(self, path: list[str], day: date | None = None) -> None:
        when = f" as of {day.isoformat()}" if day else ""
        super().__init__(f"BOM cycle{when}: {' → '.join(path)}")
        self.path = path


def gross_qty(qty_per: Decimal, scrap_pct: Decimal) -> Decimal:
    """A line's quantity per parent unit with its scrap allowance (``qty_per`` itself when there is none); in the
    caller's decimal context."""
    return qty_per * (1 + scrap_pct / HUNDRED) if scrap_pct else qty_per


class BomLine(NamedTuple):
    """One line of a BOM version. A named tuple: released structures are loaded by the hundred thousand,
    and a tuple is both immutable and cheap to build (validation happens in ``BomVersion``)."""

    component: str
    qty_per: Decimal
    uom: str
    scrap_pct: Decimal = ZERO
    operation: int | None = None
    phantom: bool = False
    fixed_qty: bool = False

    @property
    def key(self) -> LineKey:
        return (self.component, self.operation)

    @property
    def scrap_factor(self) -> Decimal:
        return 1 + self.scrap_pct / HUNDRED

    @property
    def gross_qty(self) -> Decimal:
        """Quantity consumed per parent unit (per order when fixed), scrap included."""
        return gross_qty(self.qty_per, self.scrap_pct)


class LineColumns(NamedTuple):
    """A version's lines as columns (the same data as ``BomVersion.lines``, line ``n`` is position ``n`` of each):
    what the explosion reads, and what a bulk read of the released structure produces without building a
    ``BomLine`` per line."""

    components: tuple[str, ...]
    qty_pers: tuple[Decimal, ...]
    uoms: tuple[str, ...]
    scrap_pcts: tuple[Decimal, ...]
    operations: tuple[int | None, ...]
    phantoms: tuple[bool, ...]
    fixed_qtys: tuple[bool, ...]

    @classmethod
    def of(cls, lines: tuple[BomLine, ...]) -> LineColumns:
        if not lines:
            return NO_COLUMNS
        return cls._make(zip(*lines, strict=True))

    def lines(self) -> tuple[BomLine, ...]:
        return tuple(map(BomLine._make, zip(*self, strict=True)))


NO_COLUMNS = LineColumns((), (), (), (), (), (), ())


class BomVersion:
    """One revision of an item's BOM: state, effectivity window and lines. Immutable.

    The lines are held as ``BomLine`` tuples, as ``LineColumns``, or both: a version read in bulk holds only its
    columns and builds its ``lines`` the first time they are asked for (a cold explosion never asks), a version
    built from lines derives its ``columns`` on first use. Either way both views hold the same data."""

    __slots__ = ("_columns", "_lines", "item", "revision", "state", "valid_from", "valid_to")

    item: str
    revision: str
    state: VersionState
    valid_from: date
    valid_to: date | None
    _lines: tuple[BomLine, ...] | None
    _columns: LineColumns | None

    def __init__(
        self, item: str, revision: str, state: VersionState, valid_from: date, valid_to: date | None,
        lines: Iterable[BomLine] = (), *, columns: LineColumns | None = None, validate: bool = True,
    ) -> None:
        """Validated unless ``validate=False`` (versions read back from the database, validated when saved).
        ``columns``, when given, are the lines (and ``lines`` must be left empty)."""
        built = tuple(lines)
        if columns is not None and built:
            raise ValueError(f"BOM {item} rev {revision}: give the lines or their columns, not both")
        for name, value in (("item", item), ("revision", revision), ("state", state), ("valid_from", valid_from),
                            ("valid_to", valid_to), ("_lines", None if columns is not None else built),
                            ("_columns", columns)):
            object.__setattr__(self, name, value)
        if validate:
            self._check()

    @classmethod
    def trusted(
        cls, item: str, revision: str, state: VersionState, valid_from: date, valid_to: date | None,
        lines: tuple[BomLine, ...],
    ) -> BomVersion:
        """Build without re-validating: for versions read back from the database, validated when saved."""
        return cls(item, revision, state, valid_from, valid_to, lines, validate=False)

    @classmethod
    def released_columns(
        cls, item: str, revision: str, valid_from: date, valid_to: date | None, columns: LineColumns
    ) -> BomVersion:
        """A released version read back from the database as columns (not re-validated)."""
        return cls(item, revision, VersionState.RELEASED, valid_from, valid_to, columns=columns, validate=False)

    def _check(self) -> None:
        check_window(self.what, self.valid_from, self.valid_to)
        seen: set[LineKey] = set()
        for line in self.lines:
            _check_line(self, line)
            if line.key in seen:
                at = f"operation {line.operation}" if line.operation is not None else "no operation"
                raise BomError(f"{self.what} lists component {line.component} twice at {at}")
            seen.add(line.key)

    @property
    def lines(self) -> tuple[BomLine, ...]:
        lines = self._lines
        if lines is None:  # built once; two threads racing here build equal tuples
            lines = self._columns.lines() if self._columns is not None else ()
            object.__setattr__(self, "_lines", lines)
        return lines

    @property
    def columns(self) -> LineColumns:
        columns = self._columns
        if columns is None:
            columns = LineColumns.of(self.lines)
            object.__setattr__(self, "_columns", columns)
        return columns

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"BomVersion is immutable: cannot set {name}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"BomVersion is immutable: cannot delete {name}")

    def _head(self) -> tuple[str, str, VersionState, date, date | None]:
        return (self.item, self.revision, self.state, self.valid_from, self.valid_to)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BomVersion):
            return NotImplemented
        return self._head() == other._head() and self.lines == other.lines

    def __hash__(self) -> int:
        return hash(self._head())

    def __repr__(self) -> str:
        return (f"BomVersion(item={self.item!r}, revision={self.revision!r}, state={self.state!r}, "
                f"valid_from={self.valid_from!r}, valid_to={self.valid_to!r}, lines={self.lines!r})")

    @property
    def what(self) -> str:
        return f"BOM {self.item} rev {self.revision}"

    def effective_on(self, day: date) -> bool:
        return self.state == VersionState.RELEASED and effective_on(self.valid_from, self.valid_to, day)

    def components(self) -> list[str]:
        return sorted({line.component for line in self.lines})

    def same_content(self, other: BomVersion) -> bool:
        """Same item, window and lines (order-insensitive): re-importing it changes nothing."""
        return (
            (self.item, self.revision, self.valid_from, self.valid_to)
            == (other.item, other.revision, other.valid_from, other.valid_to)
            and sorted(self.lines, key=_sort_key) == sorted(other.lines, key=_sort_key)
        )


def _sort_key(line: BomLine) -> tuple[str, int]:
    return (line.component, -1 if line.operation is None else line.operation)


def _check_line(version: BomVersion, line: BomLine) -> None:
    where = f"{version.what} line {line.component}"
    if not line.component:
        raise BomError(f"{version.what}: a line has no component")
    if line.component == version.item:
        raise BomError(f"{where}: an item cannot be its own component")
    if not isinstance(line.qty_per, Decimal) or line.qty_per <= 0:
        raise BomError(f"{where}: qty_per must be a positive decimal, got {line.qty_per!r}")
    if not isinstance(line.scrap_pct, Decimal) or line.scrap_pct < 0:
        raise BomError(f"{where}: scrap_pct must be a non-negative decimal, got {line.scrap_pct!r}")
    if line.operation is not None and (
        isinstance(line.operation, bool) or not isinstance(line.operation, int) or line.operation <= 0
    ):
        raise BomError(f"{where}: operation must be a positive integer, got {line.operation!r}")
