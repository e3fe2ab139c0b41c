"""Field types the request models share: codes, quantities, reasons, idempotency keys."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]
Lot = Annotated[str, Field(max_length=64)]
Quantity = Annotated[Decimal, Field(gt=0, lt=Decimal(10) ** 9, decimal_places=6)]
Reason = Annotated[str, Field(max_length=500)]
Key = Annotated[str | None, Field(min_length=1, max_length=200, description="idempotency key (default: a new one)")]
