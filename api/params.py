"""What several routers share: the request-model base (unknown fields refused), times and dates in query strings."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import HTTPException
from pydantic import BaseModel, ConfigDict

from mes_common.moments import MomentError, parse_moment


class Request(BaseModel):
    """A request body: unknown fields are refused (422), so nobody can set computed fields."""

    model_config = ConfigDict(extra="forbid")


class Response(BaseModel):
    """A response body: exactly these fields leave the service (an allowlist)."""

    model_config = ConfigDict(extra="ignore")


def moment(text: str | None, param: str, *, end_of_day: bool, naive_is_utc: bool = False) -> datetime | None:
    """An ISO 8601 timestamp or a date (its end for as-of / to, its start for from) in UTC; 422 naming ``param``."""
    if text is None or text == "":
        return None
    try:
        return parse_moment(text, end_of_day=end_of_day, naive_is_utc=naive_is_utc)
    except MomentError as exc:
        if exc.problem == "timezone":
            raise HTTPException(422, f"{param} {text!r} has no timezone (add Z or +hh:mm)") from None
        raise HTTPException(422, f"{param} {text!r} is not an ISO 8601 date (YYYY-MM-DD) or timestamp") from None


def day(text: str | None, param: str) -> date:
    """A date YYYY-MM-DD (default today); 422 naming ``param``."""
    if text is None or text == "":
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise HTTPException(422, f"{param} {text!r} is not a date (YYYY-MM-DD)") from None
