"""WIP pools: a quantity of units and their value, kept per bucket (cost element x provenance).

Invariants:
- Every bucket value is a ``Decimal`` in cents and never negative.
- Taking ``n`` units out of a pool takes ``take_share`` of its total (the last units take exactly what
  remains), split across buckets so that the parts sum exactly to the amount taken and no part exceeds
  what its bucket holds. A pool that empties ends at exactly zero in every bucket.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Context, Decimal
from enum import StrEnum

from mes_common.money import CENTS, ZERO, take_share
from mes_common.provenance import Provenance


class Element(StrEnum):
    """Cost elements WIP is reported by."""

    MATERIAL = "material"
    SETUP = "setup"
    LABOR = "labor"
    MACHINE = "machine"
    ENERGY = "energy"


Bucket = tuple[Element, Provenance]
# A fixed bucket order makes every split deterministic (same input, same cents, on every machine).
BUCKETS: tuple[Bucket, ...] = tuple((e, p) for e in Element for p in Provenance)
Values = dict[Bucket, Decimal]


def total(values: Mapping[Bucket, Decimal]) -> Decimal:
    return sum(values.values(), ZERO)


def add_values(target: Values, other: Mapping[Bucket, Decimal]) -> None:
    for bucket, amount in other.items():
        if amount:
            target[bucket] = target.get(bucket, ZERO) + amount


def subtract_values(target: Values, other: Mapping[Bucket, Decimal]) -> None:
    for bucket, amount in other.items():
        if amount:
            left = target.get(bucket, ZERO) - amount
            if left < 0:
                raise ValueError(f"bucket {bucket} would go negative ({left})")
            if left:
                target[bucket] = left
            else:
                target.pop(bucket, None)


def split_amount(values: Mapping[Bucket, Decimal], amount: Decimal) -> Values:
    """Split ``amount`` (cents, 0 <= amount <= total(values)) across ``values``' buckets in proportion.

    Each part is first floored to cents (so it cannot exceed its bucket); the few cents left over go one
    each to the buckets with the largest remainders, which always still have room for them.
    """
    whole = total(values)
    if amount < 0 or amount > whole:
        raise ValueError(f"cannot split {amount} out of {whole}")
    if amount == whole:
        return {b: v for b, v in values.items() if v}
    if amount == 0:
        return {}
    parts: Values = {}
    remainders: list[tuple[Decimal, int, Bucket]] = []
    ctx = _SPLIT_CONTEXT  # explicit context methods: a localcontext switch costs more than the sums
    for order, bucket in enumerate(_ordered(values)):
        exact = ctx.divide(ctx.multiply(values[bucket], amount), whole)
        floored = exact.quantize(CENTS, ROUND_FLOOR, ctx)
        if floored:
            parts[bucket] = floored
        remainders.append((ctx.subtract(exact, floored), -order, bucket))
    missing = amount - total(parts)
    remainders.sort(reverse=True)
    for _, _, bucket in remainders:
        if missing <= 0:
            break
        parts[bucket] = parts.get(bucket, ZERO) + CENTS
        missing -= CENTS
    return parts


_SPLIT_CONTEXT = Context(prec=38)
_BUCKET_INDEX = {bucket: n for n, bucket in enumerate(BUCKETS)}


def _ordered(values: Mapping[Bucket, Decimal]) -> list[Bucket]:
    """The buckets of ``values`` holding value, in ``BUCKETS`` order."""
    return sorted((b for b, v in values.items() if v), key=_BUCKET_INDEX.__getitem__)


@dataclass
class Pool:
    """Units waiting at an operation (first-pass or rework) and their value per bucket."""

    qty: Decimal = ZERO
    values: Values = field(default_factory=dict)

    @property
    def value(self) -> Decimal:
        return total(self.values)

    def take(self, qty: Decimal) -> Values:
        """Remove ``qty`` units and return the value (per bucket) they take with them, in a new dict (the caller may
        keep and change it: costing grows a completion's batch from it)."""
        if qty == 0:
            return {}
        if qty == self.qty:
            # Emptying the pool takes every bucket whole (what the general path below computes, directly).
            parts = {b: v for b, v in self.values.items() if v}
            self.values.clear()
            self.qty -= qty
            return parts
        amount = take_share(self.value, self.qty, qty)
        parts = split_amount(self.values, amount)
        subtract_values(self.values, parts)
        self.qty -= qty
        if self.qty == 0:
            if self.value:
                raise AssertionError(f"pool emptied but still holds {self.values}")
            self.values.clear()
        return parts

    def put(self, qty: Decimal, values: Mapping[Bucket, Decimal]) -> None:
        self.qty += qty
        add_values(self.values, values)

    def copy(self) -> Pool:
        return Pool(self.qty, dict(self.values))

    def to_json(self) -> dict[str, str]:
        return {f"{e.value}/{p.value}": format(v, "f") for (e, p), v in self.values.items() if v}

    @staticmethod
    def values_from_json(data: Mapping[str, str]) -> Values:
        out: Values = {}
        for key, text in data.items():
            element, provenance = key.split("/")
            out[(Element(element), Provenance(provenance))] = Decimal(text)
        return out
