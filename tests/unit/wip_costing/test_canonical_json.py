"""``OperationEvent.canonical_json`` (written out by hand for speed) is exactly the sorted compact ``json.dumps``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from mes_common.provenance import Provenance
from wip_costing.events import OperationEvent, parse_event

ODD = ["WO-1", "", "a\"b", "back\\slash", "tab\there", "new\nline", "del\x7f", "é", "日本", "\u2028", "ctl\x01",
       "emoji 🙂", "~ !#$%&'()*+,-./:;<=>?@[]^_`{|}"]


def reference(event: OperationEvent) -> str:
    return json.dumps(event.to_json(), sort_keys=True, separators=(",", ":"))


@pytest.mark.parametrize("text", ODD)
def test_strings_are_escaped_as_json_does(text: str) -> None:
    event = OperationEvent(
        event_id=text or "x", source_time=datetime(2026, 11, 22, 8, tzinfo=timezone(timedelta(hours=2))),
        provenance=Provenance.SENSOR, work_order=text, serial=text, operation=10, good=Decimal("1.50"),
        operator=text, machine=text, work_center=text,
    )
    assert event.canonical_json() == reference(event)


def test_every_field_and_absent_ones() -> None:
    full = parse_event({
        "event_id": "e-1", "work_order": "WO-7", "serial": "SN-1", "operation": "30", "good": "2.000",
        "scrap": "0.5", "rework": 1, "kwh": "0.40", "actual_minutes": "12.25", "operator": "op", "machine": "m1",
        "work_center": "WC-ASSY", "provenance": "manual", "source_time": "2026-11-22T08:00:00.123456Z",
    })
    bare = parse_event({"event_id": "e-2", "serial": "SN-2", "good": "1E+2", "provenance": "sensor",
                        "source_time": "2026-11-22T08:00:00+05:30"})
    for event in (full, bare):
        assert event.canonical_json() == reference(event)


def test_unusual_operation_values_fall_back_to_json() -> None:
    event = OperationEvent(event_id="e", source_time=datetime(2026, 1, 1, tzinfo=UTC), provenance=Provenance.SENSOR,
                           work_order="WO", operation=True, good=Decimal(1))  # type: ignore[arg-type]
    assert event.canonical_json() == reference(event)


@pytest.mark.parametrize("qty", ["0", "0.0", "1.50", "100", "1E+2", "2.5E+3", "0.000100", "1E-7", "1.23E-5",
                                 "123456789012345678.123456"])
def test_quantities_are_written_as_fmt_qty_does(qty: str) -> None:
    event = OperationEvent(event_id="q", source_time=datetime(2026, 1, 1, tzinfo=UTC), provenance=Provenance.SCAN,
                           work_order="WO", operation=10, good=Decimal(qty), scrap=Decimal(qty), kwh=Decimal(qty),
                           actual_minutes=Decimal(qty))
    assert event.canonical_json() == reference(event)
