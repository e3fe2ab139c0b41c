"""The one parser of "an ISO date or timestamp" (``mes_common.moments``) that the CLI and the API adapt."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mes_common.moments import MomentError, parse_moment


def test_dates_mean_their_first_or_last_microsecond() -> None:
    assert parse_moment("2026-11-22", end_of_day=False, naive_is_utc=False) == datetime(2026, 11, 22, tzinfo=UTC)
    assert parse_moment("2026-11-22", end_of_day=True, naive_is_utc=False) == datetime(
        2026, 11, 22, 23, 59, 59, 999999, tzinfo=UTC)


def test_timestamps_come_back_in_utc() -> None:
    assert parse_moment("2026-11-22T09:00:00+01:00", end_of_day=True, naive_is_utc=False) == datetime(
        2026, 11, 22, 8, tzinfo=UTC)
    assert parse_moment("2026-11-22T09:00:00Z", end_of_day=False, naive_is_utc=False).tzinfo == UTC
    assert parse_moment("2026-11-22T09:00", end_of_day=False, naive_is_utc=True) == datetime(
        2026, 11, 22, 9, tzinfo=UTC)


@pytest.mark.parametrize(("text", "naive_is_utc", "problem", "message"), [
    ("yesterday", True, "format", "'yesterday' is not an ISO 8601 date or timestamp"),
    ("2026-13-01", True, "format", "'2026-13-01' is not an ISO 8601 date or timestamp"),
    ("2026-11-22T09:00", False, "timezone", "'2026-11-22T09:00' has no timezone"),
])
def test_refusals_say_which_rule(text: str, naive_is_utc: bool, problem: str, message: str) -> None:
    with pytest.raises(MomentError) as caught:
        parse_moment(text, end_of_day=True, naive_is_utc=naive_is_utc)
    assert (caught.value.problem, caught.value.message) == (problem, message)
