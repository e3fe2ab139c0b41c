"""Work centers and routing versions: the operations an item goes through, as a validated graph.

Invariants (checked when a ``RoutingVersion`` is built, so every instance is valid):
- Operation numbers are unique positive integers; every operation names a work center.
- Without ``after`` the routing is the sequence of its operations by number. An operation's ``after``
  (predecessor numbers) overrides that default and makes the routing a DAG.
- The forward graph is acyclic, has exactly one start and one end; every predecessor exists.
- ``rework_to`` names an operation upstream of the one sending units back (an ancestor in the graph), or the
  operation itself (repair in place, at the same station); rework returns are the only way back and are not
  edges of the forward graph.
- Times, kWh and rates are non-negative ``Decimal``; yield is in (0, 100].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import networkx as nx

from mes_common.errors import DomainError
from mes_common.money import fmt_qty
from routing.versioning import VersionState, check_window, effective_on

__all__ = ["Operation", "RoutingError", "RoutingVersion", "VersionState", "WorkCenter"]

ZERO = Decimal(0)
HUNDRED = Decimal(100)


class RoutingError(DomainError):
    """An invalid routing or work center: names the item, revision, operation and the rule broken."""

    code = "bad_routing"


@dataclass(frozen=True, slots=True)
class WorkCenter:
    code: str
    name: str
    labor_rate: Decimal
    machine_rate: Decimal
    energy_tariff: Decimal
    cost_center: str
    machines: tuple[str, ...] = ()
    terminals: tuple[str, ...] = ()
    supply_location: str | None = None

    def __post_init__(self) -> None:
        for name in ("labor_rate", "machine_rate", "energy_tariff"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or value < 0:
                raise RoutingError(f"work center {self.code}: {name} must be a non-negative decimal, got {value!r}")


@dataclass(frozen=True, slots=True)
class Operation:
    number: int
    work_center: str
    setup_min: Decimal = ZERO
    run_min_per_unit: Decimal = ZERO
    std_kwh_per_unit: Decimal = ZERO
    yield_pct: Decimal = HUNDRED
    quality_standard: str = ""
    rework_to: int | None = None
    # Predecessor operation numbers; None = the previous operation by number (a plain sequence).
    after: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class RoutingVersion:
    item: str
    revision: str
    state: VersionState
    valid_from: date
    valid_to: date | None
    operations: tuple[Operation, ...]
    _graph: nx.DiGraph = field(init=False, repr=False, compare=False)
    _by_number: dict[int, Operation] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        what = f"routing {self.item} rev {self.revision}"
        check_window(what, self.valid_from, self.valid_to)
        ops = tuple(sorted(self.operations, key=lambda op: op.number))
        object.__setattr__(self, "operations", ops)
        by_number: dict[int, Operation] = {}
        for op in ops:
            _check_operation(what, op)
            if op.number in by_number:
                raise RoutingError(f"{what}: operation {op.number} is listed twice")
            by_number[op.number] = op
        if not ops:
            raise RoutingError(f"{what}: a routing needs at least one operation")
        graph = _build_graph(what, ops, by_number)
        object.__setattr__(self, "_graph", graph)
        object.__setattr__(self, "_by_number", by_number)

    @property
    def what(self) -> str:
        return f"routing {self.item} rev {self.revision}"

    @property
    def graph(self) -> nx.DiGraph:
        """The forward operation graph (a copy: the version is immutable)."""
        return self._graph.copy()

    def effective_on(self, day: date) -> bool:
        return self.state == VersionState.RELEASED and effective_on(self.valid_from, self.valid_to, day)

    def operation(self, number: int) -> Operation:
        try:
            return self._by_number[number]
        except KeyError:
            known = ", ".join(str(n) for n in self._by_number)
            raise RoutingError(f"{self.what} has no operation {number} (operations: {known})") from None

    def numbers(self) -> list[int]:
        return [op.number for op in self.operations]

    def first(self) -> Operation:
        return self._by_number[next(n for n in self._graph if self._graph.in_degree(n) == 0)]

    def last(self) -> Operation:
        return self._by_number[next(n for n in self._graph if self._graph.out_degree(n) == 0)]

    def successors(self, number: int) -> list[int]:
        self.operation(number)
        return sorted(self._graph.successors(number))

    def predecessors(self, number: int) -> list[int]:
        self.operation(number)
        return sorted(self._graph.predecessors(number))

    def is_last(self, number: int) -> bool:
        self.operation(number)
        return self._graph.out_degree(number) == 0

    def operations_at(self, work_center: str) -> list[Operation]:
        return [op for op in self.operations if op.work_center == work_center]

    def in_order(self) -> list[Operation]:
        """Operations in a topological order (ties by number): the order units flow through them."""
        return [self._by_number[n] for n in nx.lexicographical_topological_sort(self._graph)]

    def to_json(self) -> dict[str, Any]:
        """The version as ``routing show --json`` and ``GET /routings/{item}`` give it (quantities as text)."""
        return {
            "item": self.item, "revision": self.revision, "state": self.state.value,
            "valid_from": self.valid_from.isoformat(),
            "valid_to": self.valid_to.isoformat() if self.valid_to else None,
            "operations": [
                {"operation": op.number, "work_center": op.work_center, "setup_min": fmt_qty(op.setup_min),
                 "run_min_per_unit": fmt_qty(op.run_min_per_unit), "std_kwh_per_unit": fmt_qty(op.std_kwh_per_unit),
                 "yield_pct": fmt_qty(op.yield_pct), "rework_to": op.rework_to,
                 "quality_standard": op.quality_standard, "after": self.predecessors(op.number)}
                for op in self.in_order()
            ],
        }


def _check_operation(what: str, op: Operation) -> None:
    if isinstance(op.number, bool) or not isinstance(op.number, int) or op.number <= 0:
        raise RoutingError(f"{what}: operation number must be a positive integer, got {op.number!r}")
    if not op.work_center:
        raise RoutingError(f"{what}: operation {op.number} has no work center")
    for name in ("setup_min", "run_min_per_unit", "std_kwh_per_unit"):
        value = getattr(op, name)
        if not isinstance(value, Decimal) or value < 0:
            raise RoutingError(f"{what}: operation {op.number}: {name} must be a non-negative decimal, got {value!r}")
    if not isinstance(op.yield_pct, Decimal) or not ZERO < op.yield_pct <= HUNDRED:
        raise RoutingError(f"{what}: operation {op.number}: yield_pct must be in (0, 100], got {op.yield_pct!r}")


def _build_graph(what: str, ops: tuple[Operation, ...], by_number: dict[int, Operation]) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(by_number)
    previous: int | None = None
    for op in ops:
        preds = op.after if op.after is not None else (() if previous is None else (previous,))
        for pred in preds:
            if pred not in by_number:
                raise RoutingError(f"{what}: operation {op.number} comes after operation {pred}, which does not exist")
            if pred == op.number:
                raise RoutingError(f"{what}: operation {op.number} comes after itself")
            graph.add_edge(pred, op.number)
        previous = op.number
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        pass
    else:
        path = " → ".join(str(edge[0]) for edge in cycle) + f" → {cycle[0][0]}"
        raise RoutingError(f"{what}: operations form a cycle {path} (only rework_to may send units back)")
    starts = sorted(n for n in graph if graph.in_degree(n) == 0)
    ends = sorted(n for n in graph if graph.out_degree(n) == 0)
    if len(starts) != 1:
        raise RoutingError(f"{what}: a routing needs exactly one first operation, found {starts}")
    if len(ends) != 1:
        raise RoutingError(f"{what}: a routing needs exactly one last operation, found {ends}")
    for op in ops:
        if op.rework_to is None:
            continue
        if op.rework_to not in by_number:
            raise RoutingError(f"{what}: operation {op.number} sends rework to operation {op.rework_to}, "
                               "which does not exist")
        if op.rework_to != op.number and op.rework_to not in nx.ancestors(graph, op.number):
            raise RoutingError(f"{what}: operation {op.number} sends rework to operation {op.rework_to}, "
                               "which is neither an earlier operation nor itself")
    return graph
