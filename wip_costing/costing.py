"""The cost rules of one completion (SPEC section 4), applied in memory; pure, no database.

A completion at operation k processes good + scrap + rework units:
1. the batch takes rework-flagged units first, then first-pass units, each at its pool's share;
2. the completion's own costs are added to the batch, each rounded to cents: material for FIRST-PASS units
   only (rework-flagged units never consume components again), plus each component's fixed quantity at the
   order's first completion there; setup minutes (labor + machine rate) at the order's first completion
   there; labor = paid minutes x labor rate, paid minutes = actual minutes when reported, else standard
   minutes (setup charged + run x units), the setup part of labor taking its share of the paid minutes;
   machine = standard minutes x machine rate; energy = kWh x tariff, or std kWh/unit x units without a meter;
3. the batch value leaves in a fixed order, each output at ``take_share`` of what is left, so the last output
   takes exactly what remains: scrap (to SCRAP-LOSS), rework (to the ``rework_to`` operation's rework pool),
   good rework-flagged units (rework pool of the next operation), good first-pass units (first-pass pool of
   the next operation). From the last operation good units are received into stock at their value.
   Rework-flagged units of a batch are counted among its good units first: they have been repaired.

Invariants: every entry balances; value in = value out of the batch; a refused completion leaves the order
state and the stock exactly as they were (every refusal comes before the first change to the order state;
``apply_completion`` rolls the stock back).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal
from typing import NamedTuple, Protocol

from ledger.model import QTY_PLACES, decimal_places
from ledger.units import unit_places, unit_problem
from mes_common.errors import DomainError
from mes_common.money import CENTS, ZERO
from mes_common.provenance import Provenance
from wip_costing.events import OperationEvent
from wip_costing.journal import Account, EntryKind, JournalEntry, JournalLine, mirrored_lines, wip_credit_lines
from wip_costing.model import (
    MoreThanWaiting,
    NoReworkOperation,
    OpSpec,
    OrderClosed,
    OrderSnapshot,
    OrderState,
    OrderStatus,
    WipError,
)
from wip_costing.pools import Element, Pool, Values, add_values, total

MINUTES_PER_HOUR = Decimal(60)
_QTY_QUANTUM = Decimal(1).scaleb(-QTY_PLACES)


def component_qty(value: Decimal) -> Decimal:
    """A component quantity as the ledger stores it: ``QTY_PLACES`` places (half up), no trailing zeros (what a
    completion issues, and what the planning feed expects open orders to issue)."""
    rounded = value.quantize(_QTY_QUANTUM, rounding=ROUND_HALF_UP) if decimal_places(value) > QTY_PLACES else value
    return rounded.normalize() if rounded else ZERO


class StockPort(Protocol):
    """The stock ledger as costing sees it, in memory: issues at moving average, receipts at a value."""

    def mark(self) -> object: ...

    def restore(self, mark: object) -> None: ...

    def issue(
        self, item: str, location: str, qty: Decimal, *, event: OperationEvent, order: str
    ) -> list[tuple[Decimal, int]]:
        """Issue ``qty`` and return (value taken, move index) per move: one, or one per lot when the stock is held
        in lots (oldest first, or the event's lot); raises a DomainError when stock is short."""
        ...

    def receive(
        self, item: str, location: str, qty: Decimal, value: Decimal, *, event: OperationEvent | None, order: str
    ) -> int:
        """Receive ``qty`` worth ``value``; returns the move index."""
        ...

    def holds_lot(self, item: str, location: str, lot: str) -> bool:
        """Whether ``item`` at ``location`` has (or had at the batch's start) stock in lot ``lot``."""
        ...


class Conversion(NamedTuple):
    setup_labor: Decimal
    setup_machine: Decimal
    labor: Decimal
    machine: Decimal
    energy: Decimal


_CTX = Context(prec=38, rounding=ROUND_HALF_UP)
_ONE = Decimal(1)


def _amount(qty: Decimal, rate: Decimal, per: Decimal = _ONE) -> Decimal:
    """``qty`` x ``rate`` / ``per`` rounded half up to cents (same rule as ``to_cents``, without a context switch:
    this runs several times per event)."""
    product = _CTX.multiply(qty, rate)
    if per is not _ONE:
        product = _CTX.divide(product, per)
    return product.quantize(CENTS, context=_CTX) + ZERO


def energy_kwh(spec: OpSpec, event: OperationEvent, units: Decimal) -> Decimal:
    """The kWh a completion is charged with: the metered delta, else the standard kWh per unit × units."""
    return event.kwh if event.kwh is not None else spec.std_kwh_per_unit * units


def conversion_costs(spec: OpSpec, event: OperationEvent, units: Decimal, setup_min: Decimal) -> Conversion:
    """Setup, labor, machine and energy of a completion processing ``units`` (each rounded to cents)."""
    run_min = spec.run_min_per_unit * units
    std_min = setup_min + run_min
    paid_min = event.actual_minutes if event.actual_minutes is not None else std_min
    labor_total = _amount(paid_min, spec.labor_rate, MINUTES_PER_HOUR)
    setup_labor = ZERO
    if setup_min and std_min:
        setup_labor = _amount(_CTX.divide(_CTX.multiply(setup_min, paid_min), std_min), spec.labor_rate,
                              MINUTES_PER_HOUR)
    kwh = energy_kwh(spec, event, units)
    return Conversion(
        setup_labor,
        _amount(setup_min, spec.machine_rate, MINUTES_PER_HOUR) if setup_min else ZERO,
        labor_total - setup_labor,
        _amount(run_min, spec.machine_rate, MINUTES_PER_HOUR),
        _amount(kwh, spec.energy_tariff),
    )


# Per provenance, its buckets in ``Element`` order (material, setup, labor, machine, energy): built once.
_BUCKETS_OF = {prov: tuple((element, prov) for element in Element) for prov in Provenance}


class CostingBroke(RuntimeError):
    """A refusal raised after a completion began changing the order state: a bug, never an event's fault.

    Not a ``DomainError``, so the batch fails as a whole instead of the event being rejected with the order
    state half-changed."""


def complete(
    snapshot: OrderSnapshot, state: OrderState, event: OperationEvent, operation: int, stock: StockPort
) -> list[JournalEntry]:
    """Apply one completion to ``state`` and ``stock`` in place; returns its journal entries.

    Every refusal (``DomainError``) comes before the first change to ``state``: the checks, then the material
    issues (the stock is rolled back by ``apply_completion``). What follows cannot be refused: a ``DomainError``
    there is turned into ``CostingBroke``.
    """
    order = snapshot.order_id
    event_id = event.event_id
    if state.status is OrderStatus.CLOSED:
        raise OrderClosed(f"work order {order} is closed; event {event_id} cannot be applied")
    spec = snapshot.op(operation)
    if event.work_center is not None and event.work_center != spec.work_center:
        raise WipError(
            f"work order {order} operation {operation} runs at {spec.work_center}, "
            f"but event {event_id} comes from {event.work_center}"
        )
    uom = snapshot.uom
    if uom and unit_places(uom) < QTY_PLACES:
        for name, qty in (("good", event.good), ("scrap", event.scrap), ("rework", event.rework)):
            problem = unit_problem(qty, uom)
            if problem is not None:
                raise WipError(f"event {event_id}: field {name!r}: {problem} (work order {order} makes "
                               f"{snapshot.item}, counted in {uom})")
    st = state.ops[operation]
    units = event.good + event.scrap + event.rework
    first_pass, rework_pool = st.first_pass, st.rework
    if units > first_pass.qty + rework_pool.qty:
        raise MoreThanWaiting(order, operation, units, st.waiting)
    if event.rework > 0 and spec.rework_to is None:
        raise NoReworkOperation(
            f"work order {order} operation {operation}: routing {snapshot.item} rev {snapshot.routing_revision} "
            f"has no rework operation for it, so {event.rework} units cannot be sent to rework"
        )
    prov = event.provenance
    wc = spec.work_center
    rework_taken = min(units, rework_pool.qty)
    first_pass_taken = units - rework_taken
    first_time = not st.setup_charged

    if event.lot is not None:
        _check_lot(spec, stock, event, order)
    # Material for first-pass units (the only step that can be refused: short stock).
    material: list[JournalLine] = []
    material_value = ZERO
    for need in spec.materials:
        qty = component_qty(need.qty_per_unit * first_pass_taken + (need.fixed_qty if first_time else ZERO))
        if qty <= 0:
            continue
        pieces = stock.issue(need.component, spec.supply_location, qty, event=event, order=order)
        value = pieces[0][0] if len(pieces) == 1 else sum((v for v, _ in pieces), ZERO)
        if value:
            material.append(JournalLine(Account.WIP, value, ZERO, order, operation, wc, prov, need.component, None,
                                        (value, ZERO, ZERO, ZERO, ZERO)))
            material_value += value
        for piece, move in pieces:  # one credit per stock move (per lot): the journal names each move's lot
            material.append(JournalLine(Account.RM_INV, ZERO, piece, order, None, None, prov, need.component, move,
                                        None))
    try:
        return _move_value(snapshot, spec, state, event, operation, stock, material, material_value, rework_taken,
                           first_pass_taken, units)
    except DomainError as exc:
        raise CostingBroke(f"event {event_id}: refused after work order {order} began to change: {exc}") from exc


def _check_lot(spec: OpSpec, stock: StockPort, event: OperationEvent, order: str) -> None:
    """An event naming a lot must name one that a component of its operation holds at the supply location
    (otherwise the issue would silently take the oldest lots instead)."""
    lot = event.lot or ""
    if any(stock.holds_lot(need.component, spec.supply_location, lot) for need in spec.materials):
        return
    components = ", ".join(sorted({need.component for need in spec.materials})) or "none"
    raise WipError(f"event {event.event_id}: lot {lot} is not held at {spec.supply_location} by any component of "
                   f"work order {order} operation {spec.number} (components: {components})")


def _move_value(
    snapshot: OrderSnapshot, spec: OpSpec, state: OrderState, event: OperationEvent, operation: int,
    stock: StockPort, material: list[JournalLine], material_value: Decimal, rework_taken: Decimal,
    first_pass_taken: Decimal, units: Decimal,
) -> list[JournalEntry]:
    """``complete`` from the first change on (``spec``: the operation's, ``material``: the lines of its issues):
    the batch's value out of the pools, its conversion costs, and the batch leaving to scrap, rework, the next
    operation or finished goods."""
    order, event_id, when, prov = snapshot.order_id, event.event_id, event.source_time, event.provenance
    wc = spec.work_center
    st = state.ops[operation]
    entries: list[JournalEntry] = []
    if material:
        entries.append(JournalEntry(EntryKind.MATERIAL, when, event_id, order, material))
    # The units' value leaving the pools: rework-flagged units first, then first-pass units.
    # (``take`` returns a new dict: the batch may be it, and grow.)
    batch: Values = st.rework.take(rework_taken) if rework_taken else {}
    if first_pass_taken:
        if batch:
            add_values(batch, st.first_pass.take(first_pass_taken))
        else:
            batch = st.first_pass.take(first_pass_taken)
    material_bucket, setup_bucket, labor_bucket, machine_bucket, energy_bucket = _BUCKETS_OF[prov]
    if material_value:
        batch[material_bucket] = batch.get(material_bucket, ZERO) + material_value

    conv = conversion_costs(spec, event, units, ZERO if st.setup_charged else spec.setup_min)
    st.setup_charged = True
    setup = conv.setup_labor + conv.setup_machine
    conversion = JournalEntry(EntryKind.CONVERSION, when, event_id, order)
    added = setup + conv.labor + conv.machine + conv.energy
    if added:
        conversion.lines.append(JournalLine(Account.WIP, added, ZERO, order, operation, wc, prov, None, None,
                                            (ZERO, setup, conv.labor, conv.machine, conv.energy)))
        for bucket, amount in ((setup_bucket, setup), (labor_bucket, conv.labor), (machine_bucket, conv.machine),
                               (energy_bucket, conv.energy)):
            if amount:
                batch[bucket] = batch.get(bucket, ZERO) + amount
    for account, amount in (
        (Account.ABSORBED_LABOR, conv.setup_labor + conv.labor),
        (Account.ABSORBED_MACHINE, conv.setup_machine + conv.machine),
        (Account.ABSORBED_ENERGY, conv.energy),
    ):
        if amount:
            conversion.lines.append(JournalLine(account, ZERO, amount, order, operation, wc, prov, None, None, None))
    if conversion.lines:
        entries.append(conversion)

    # The batch leaves in a fixed order, each output taking its share of what is left.
    out = Pool(units, batch)
    if event.scrap:
        lines = mirrored_lines(out.take(event.scrap), Account.SCRAP_LOSS, operation, wc, order=order,
                               operation=operation, work_center=wc)
        if lines:
            entries.append(JournalEntry(EntryKind.SCRAP, when, event_id, order, lines))

    if event.rework:
        assert spec.rework_to is not None
        target_spec = snapshot.op(spec.rework_to)
        rework_values = out.take(event.rework)
        target = state.ops[spec.rework_to]
        target.rework.put(event.rework, rework_values)
        target.received += event.rework
        lines = mirrored_lines(rework_values, Account.WIP, target_spec.number, target_spec.work_center,
                               order=order, operation=operation, work_center=wc)
        if lines:
            entries.append(JournalEntry(EntryKind.REWORK, when, event_id, order, lines))

    good_rework = min(event.good, rework_taken)
    good_first = event.good - good_rework
    if spec.next_op is not None:
        next_spec = snapshot.op(spec.next_op)
        nxt = state.ops[spec.next_op]
        moved: Values = {}
        for qty, pool in ((good_rework, nxt.rework), (good_first, nxt.first_pass)):
            if qty:
                part = out.take(qty)
                pool.put(qty, part)
                if moved:
                    add_values(moved, part)
                else:
                    moved = part  # a new dict of ``take``'s; ``put`` copied its amounts
        nxt.received += event.good
        lines = mirrored_lines(moved, Account.WIP, next_spec.number, next_spec.work_center, order=order,
                               operation=operation, work_center=wc)
        if lines:
            entries.append(JournalEntry(EntryKind.TRANSFER, when, event_id, order, lines))
    elif event.good:
        received = out.take(event.good)
        value = total(received)
        move = stock.receive(snapshot.item, snapshot.receiving_location, event.good, value, event=event, order=order)
        lines = [JournalLine(Account.FG_INV, value, ZERO, order, None, None, prov, snapshot.item, move, None)]
        lines += wip_credit_lines(received, order=order, operation=operation, work_center=wc)
        entries.append(JournalEntry(EntryKind.RECEIPT, when, event_id, order, lines))
        state.produced += event.good
    if out.qty or out.values:  # an emptied pool holds no bucket at all
        raise AssertionError(f"batch of {order} op {operation} left {out.qty} units worth {out.value}")

    st.completed_good += event.good
    st.scrapped += event.scrap
    st.reworked += event.rework
    state.status = OrderStatus.COMPLETED
    for op_state in state.ops.values():
        if op_state.first_pass.qty or op_state.rework.qty:
            state.status = OrderStatus.IN_PROGRESS
            break
    return entries


def apply_completion(
    snapshot: OrderSnapshot, state: OrderState, event: OperationEvent, operation: int, stock: StockPort
) -> tuple[OrderState, list[JournalEntry]]:
    """All or nothing: ``state`` changed in place and the entries, or the refusal with ``state`` and ``stock``
    untouched (``complete`` refuses before its first change to the state; the stock is rolled back here)."""
    mark = stock.mark()
    try:
        entries = complete(snapshot, state, event, operation, stock)
    except BaseException:
        stock.restore(mark)
        raise
    return state, entries


def resolve_operation(snapshot: OrderSnapshot, event: OperationEvent) -> int:
    if event.operation is not None:
        return snapshot.op(event.operation).number
    if event.work_center is None:
        raise WipError(f"event {event.event_id}: neither operation nor work center given for {snapshot.order_id}")
    return snapshot.op_at(event.work_center).number
