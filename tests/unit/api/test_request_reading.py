"""The API's pure pieces: reading an events body, times in query strings, error messages, bindings."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from fastapi import HTTPException

from api.auth import Principal, Role
from api.errors import status_of, validation_message
from api.params import moment
from api.routes.events import MAX_EVENTS, read_events
from ledger.model import InsufficientStock, UnknownItem
from mes_common.errors import DomainError
from wip_costing.model import MoreThanWaiting


def test_an_events_body_keeps_every_number_exactly_and_any_item_for_its_own_verdict() -> None:
    body = b'[{"good": 1.10, "kwh": 1e400, "scrap": NaN}, 7, "x", null, [1], {"rework": ' + b"9" * 5000 + b"}]"
    events = read_events(body)
    assert events[0] == {"good": Decimal("1.10"), "kwh": Decimal("1E+400"), "scrap": "NaN"}
    assert events[1:5] == [7, "x", None, [1]]
    assert events[5]["rework"] == Decimal("9" * 5000)


@pytest.mark.parametrize(("body", "problem"), [
    (b"{not json", "body: not JSON"),
    (b'{"event_id": "a"}', "expected a JSON list of events, got dict"),
    (b"[" + b"1," * MAX_EVENTS + b"1]", f"send at most {MAX_EVENTS}"),
    (b"[" * 100_000, "body: not JSON"),
])
def test_a_body_that_is_not_a_list_of_events_is_refused_as_a_whole(body: bytes, problem: str) -> None:
    with pytest.raises(HTTPException) as caught:
        read_events(body)
    assert caught.value.status_code == 422 and problem in str(caught.value.detail)


def test_times_in_query_strings() -> None:
    assert moment(None, "as_of", end_of_day=True) is None
    assert moment("2026-11-22", "as_of", end_of_day=True) == datetime(2026, 11, 22, 23, 59, 59, 999999, tzinfo=UTC)
    assert moment("2026-11-22", "from", end_of_day=False) == datetime(2026, 11, 22, tzinfo=UTC)
    assert moment("2026-11-22T09:00:00+01:00", "as_of", end_of_day=True) == datetime(2026, 11, 22, 8, tzinfo=UTC)
    assert moment("2026-11-22T08:00", "as_of", end_of_day=True, naive_is_utc=True) == datetime(
        2026, 11, 22, 8, tzinfo=UTC)
    for text, problem in (("2026-11-22T08:00", "has no timezone"), ("yesterday", "is not an ISO 8601")):
        with pytest.raises(HTTPException) as caught:
            moment(text, "as_of", end_of_day=True)
        assert caught.value.status_code == 422 and str(caught.value.detail).startswith(f"as_of {text!r}")
        assert problem in str(caught.value.detail)


def test_refusals_map_to_statuses_by_kind() -> None:
    assert status_of(UnknownItem("RM-X")) == 404
    assert status_of(InsufficientStock("RM-STEEL", "STORES", "", Decimal(5), Decimal(2))) == 409
    assert status_of(MoreThanWaiting("WO-1", 30, Decimal(4), Decimal(3))) == 409
    assert status_of(DomainError("anything else the request got wrong")) == 422


def test_validation_messages_name_each_field() -> None:
    errors = [{"loc": ["body", "value"], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"},
              {"loc": ["query", "by"], "msg": "Input should be 'order'", "type": "literal_error"}]
    assert validation_message(errors) == ("body.value: is not a field you can send (computed or unknown); "
                                          "query.by: Input should be 'order'")


def test_bindings() -> None:
    terminal = Principal(Role.TERMINAL, frozenset({"WC-ASSY"}), frozenset(), "T-ASSY-1", 1)
    collector = Principal(Role.COLLECTOR, frozenset(), frozenset({"PRESS-1"}), "c", 2)
    planner = Principal(Role.PLANNER, frozenset(), frozenset(), "p", 3)
    assert terminal.may_act_at("WC-ASSY") and not terminal.may_act_at("WC-LASER")
    assert collector.may_act_for("PRESS-1") and not collector.may_act_for("LASER-1")
    assert planner.may_act_at("WC-LASER") and planner.may_act_for("LASER-1")
    assert terminal.may_act_for("LASER-1") and collector.may_act_at("WC-ASSY")  # bindings of the other kind: none
