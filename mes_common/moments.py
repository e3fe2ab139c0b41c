"""One parser of "an ISO date or timestamp" for every edge (CLI options, API query strings).

Pure: it returns an aware UTC ``datetime`` or raises ``MomentError`` saying which rule the text broke; each
adapter maps that to its own message (the CLI's ``error: ...`` lines, the API's 422)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from mes_common.errors import DomainError


class MomentError(DomainError):
    """``text`` is not a moment: ``problem`` is ``"format"`` (not ISO 8601) or ``"timezone"`` (a timestamp without
    an offset where one is required)."""

    code = "bad_moment"

    def __init__(self, text: str, problem: str) -> None:
        reason = "is not an ISO 8601 date or timestamp" if problem == "format" else "has no timezone"
        super().__init__(f"{text!r} {reason}")
        self.text = text
        self.problem = problem


def parse_moment(text: str, *, end_of_day: bool, naive_is_utc: bool) -> datetime:
    """``YYYY-MM-DD`` (its last microsecond with ``end_of_day`` — an as-of or a range end —, else its first) or an
    ISO 8601 timestamp (``Z`` accepted; without an offset it is UTC if ``naive_is_utc``, else refused), in UTC."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time.max if end_of_day else time.min, tzinfo=UTC)
        found = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MomentError(text, "format") from None
    if found.tzinfo is None:
        if not naive_is_utc:
            raise MomentError(text, "timezone")
        found = found.replace(tzinfo=UTC)
    return found.astimezone(UTC)
