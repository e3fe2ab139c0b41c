"""Field types the request models share: codes, quantities, reasons, idempotency keys."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field

# No control characters anywhere (PostgreSQL cannot store NUL), no surrounding spaces in codes.
CODE_PATTERN = r"^[^\s\x00-\x1f\x7f]([^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=CODE_PATTERN)]
Lot = Annotated[str, Field(max_length=64, pattern=TEXT_PATTERN)]
Quantity = Annotated[Decimal, Field(gt=0, lt=Decimal(10) ** 9, decimal_places=6)]
Reason = Annotated[str, Field(max_length=500, pattern=TEXT_PATTERN)]
Key = Annotated[str | None, Field(min_length=1, max_length=200, pattern=CODE_PATTERN,
                                  description="idempotency key (default: a new one)")]
Text = Annotated[str, Field(max_length=2000, pattern=TEXT_PATTERN)]
