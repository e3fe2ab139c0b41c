"""In-memory stock and the worked example's snapshot, for the pure-core tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from mes_common.errors import DomainError
from mes_common.money import take_share
from wip_costing.events import OperationEvent, parse_event
from wip_costing.model import MaterialSpec, OpSpec, OrderSnapshot

D = Decimal


class ShortStock(DomainError):
    pass


@dataclass
class FakeStock:
    """Moving-average stock per (item, location); every move is recorded."""

    balances: dict[tuple[str, str], tuple[Decimal, Decimal]] = field(default_factory=dict)
    moves: list[tuple[str, str, str, Decimal, Decimal]] = field(default_factory=list)

    def mark(self) -> object:
        return (dict(self.balances), len(self.moves))

    def restore(self, mark: object) -> None:
        balances, count = mark  # type: ignore[misc]
        self.balances = dict(balances)
        del self.moves[count:]

    def issue(
        self, item: str, location: str, qty: Decimal, *, event: OperationEvent, order: str
    ) -> list[tuple[Decimal, int]]:
        have, value = self.balances.get((item, location), (D(0), D(0)))
        if qty > have:
            raise ShortStock(f"{item} at {location}: {qty} requested, {have} available")
        taken = take_share(value, have, qty)
        self.balances[(item, location)] = (have - qty, value - taken)
        self.moves.append(("issue", item, location, qty, taken))
        return [(taken, len(self.moves) - 1)]

    def receive(
        self, item: str, location: str, qty: Decimal, value: Decimal, *, event: OperationEvent | None, order: str
    ) -> int:
        have, held = self.balances.get((item, location), (D(0), D(0)))
        self.balances[(item, location)] = (have + qty, held + value)
        self.moves.append(("receipt", item, location, qty, value))
        return len(self.moves) - 1

    def holds_lot(self, item: str, location: str, lot: str) -> bool:
        return False  # no lots here


def example_stock() -> FakeStock:
    return FakeStock({("RM-STEEL", "STORES"): (D(100), D("400.00")), ("RM-BOLT", "STORES"): (D(500), D("50.00"))})


def example_snapshot(order: str = "WO-1", qty: Decimal = D(10), rework_to: int | None = 20) -> OrderSnapshot:
    return OrderSnapshot(
        order_id=order,
        item="FG-BRACKET",
        qty=qty,
        receiving_location="FG",
        bom_revision="A",
        routing_revision="A",
        operations=(
            OpSpec(10, "WC-LASER", D(0), D("2.0"), D("0.5"), D("30.00"), D("60.00"), D("0.20"), "STORES",
                   None, 20, (MaterialSpec("RM-STEEL", D(1), D(0), D("4.00")),)),
            OpSpec(20, "WC-PRESS", D(0), D("1.0"), D("0.3"), D("30.00"), D("48.00"), D("0.20"), "STORES", None, 30),
            OpSpec(30, "WC-ASSY", D(0), D("3.0"), D("0.1"), D("36.00"), D("0.00"), D("0.20"), "STORES",
                   rework_to, None, (MaterialSpec("RM-BOLT", D(4), D(0), D("0.10")),)),
        ),
    )


def event(
    event_id: str, op: int | None, good: int = 0, scrap: int = 0, rework: int = 0, **extra: object
) -> OperationEvent:
    raw: dict[str, object] = {
        "event_id": event_id, "work_order": extra.pop("work_order", "WO-1"), "operation": op, "good": good,
        "scrap": scrap, "rework": rework, "provenance": extra.pop("provenance", "sensor"),
        "source_time": extra.pop("source_time", datetime(2026, 11, 22, 8, tzinfo=UTC).isoformat()),
    }
    raw.update(extra)
    return parse_event(raw)
