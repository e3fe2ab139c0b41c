"""Reading an event: every refusal names the event and the field; quantities are exact with at most six places."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from mes_common.provenance import Provenance
from wip_costing.events import EventFormatError, parse_event

D = Decimal


def raw(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"event_id": "E-1", "work_order": "WO-1", "operation": 10, "good": 1,
                            "provenance": "sensor", "source_time": "2026-11-22T08:00:00+01:00"}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def test_a_plain_event_is_read_exactly() -> None:
    event = parse_event(raw(good="2.5", scrap=1, kwh="0.40", actual_minutes=3.25, operator="ann"))
    assert (event.good, event.scrap, event.rework, event.kwh, event.actual_minutes) == (
        D("2.5"), D(1), D(0), D("0.40"), D("3.25"))
    assert event.source_time == datetime(2026, 11, 22, 7, tzinfo=UTC)
    assert event.provenance is Provenance.SENSOR and event.operator == "ann" and event.operation == 10


@pytest.mark.parametrize(("fields", "field", "problem"), [
    ({"event_id": ...}, "event_id", "is required"),
    ({"colour": "red"}, "colour", "is not a field"),
    ({"provenance": "psychic"}, "provenance", "is not one of"),
    ({"good": -1}, "good", "must not be negative"),
    ({"good": "1.0000001"}, "good", "1.0000001 has more than 6 decimal places"),
    ({"kwh": "0.00000001"}, "kwh", "more than 6 decimal places"),
    ({"good": "NaN"}, "good", "not a finite number"),
    ({"good": "ten"}, "good", "not a decimal number"),
    ({"good": 0}, "good", "must be positive"),
    ({"work_order": ...}, "work_order", "is required"),
    ({"operation": "ten"}, "operation", "is not an operation number"),
    ({"source_time": "2026-11-22T08:00:00"}, "source_time", "has no timezone"),
    ({"operator": " ann"}, "operator", "surrounding spaces"),
])
def test_refusals_name_the_event_and_the_field(fields: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(EventFormatError) as refused:
        parse_event(raw(**fields))
    assert refused.value.field == field
    assert problem in refused.value.message
    if "event_id" not in fields:
        assert "'E-1'" in refused.value.message


def test_trailing_zeros_beyond_six_places_are_the_same_quantity() -> None:
    long, short = parse_event(raw(good="1.50000000")), parse_event(raw(good="1.5"))
    assert long.good == D("1.5") and long.good.as_tuple().exponent == -6
    assert long.fingerprint() == short.fingerprint()


@pytest.mark.parametrize(("fields", "field", "problem"), [
    ({"good": D("1E+30")}, "good", "is out of range (allowed: 0 to 1,000,000,000)"),
    ({"kwh": 10 ** 40}, "kwh", "is out of range (allowed: 0 to 1,000,000)"),
    ({"actual_minutes": "1e999999"}, "actual_minutes", "is out of range"),
    ({"operator": "x" * 65}, "operator", "is 65 characters long (at most 64)"),
    ({"work_order": "W" * 1000}, "work_order", "(at most 64)"),
])
def test_values_the_database_cannot_hold_are_refused_naming_the_field(fields: dict[str, Any], field: str,
                                                                       problem: str) -> None:
    with pytest.raises(EventFormatError) as caught:
        parse_event(raw(**fields))
    assert caught.value.field == field and problem in caught.value.message


def test_an_overlong_event_id_is_refused_and_not_kept_as_the_id() -> None:
    with pytest.raises(EventFormatError) as caught:
        parse_event(raw(event_id="E" * 201))
    assert caught.value.field == "event_id" and caught.value.event_id is None
    assert "201 characters long (at most 200)" in caught.value.message
