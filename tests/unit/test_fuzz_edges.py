"""Random bytes, numbers and strings thrown at the edges: the event parser, the JSON-lines reader and the CSV
parsers of every import. Whatever comes in, the answer is a value or the edge's own refusal, never a traceback;
and what is accepted lies inside the documented ranges (``mes_common.limits``)."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bom.importer import BOM_COLUMNS
from ledger.importer import BALANCE_COLUMNS, ITEM_COLUMNS, LOCATION_COLUMNS
from mes_common.csv_validation import parse_csv
from mes_common.limits import EVENT_ID_LENGTH, MAX_KWH, MAX_MINUTES, MAX_OPERATION, MAX_QTY
from routing.importer import OPERATION_COLUMNS, WORK_CENTER_COLUMNS
from wip_costing.events import FIELDS, EventFormatError, parse_event, read_jsonl

numbers = st.one_of(
    st.integers(), st.integers(min_value=-(10**60), max_value=10**60), st.floats(allow_nan=True),
    st.decimals(allow_nan=True).map(str), st.sampled_from(["1e30", "-0", "1E+999999", "0x10", "1_000", "٣", "²",
                                                           "NaN", "Infinity", "-inf", "1.0000000", " 1"]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=300),
                    st.text(alphabet=st.characters(codec="utf-8"), min_size=190, max_size=320))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                               max_size=3),
                      max_leaves=6)
good_event = st.fixed_dictionaries({
    "event_id": st.text(min_size=1, max_size=250), "work_order": st.text(max_size=80),
    "provenance": st.sampled_from(["sensor", "scan", "manual", "psychic"]),
    "source_time": st.one_of(st.datetimes().map(lambda d: d.isoformat() + "+05:00"), st.text(max_size=30)),
}, optional={name: values for name in FIELDS if name not in ("event_id", "work_order", "provenance",
                                                                   "source_time")} | {"lot": values, "colour": values})


def _check(event: Any) -> None:
    assert 0 < len(event.event_id) <= EVENT_ID_LENGTH
    for qty in (event.good, event.scrap, event.rework):
        assert 0 <= qty <= MAX_QTY
    assert event.kwh is None or 0 <= event.kwh <= MAX_KWH
    assert event.actual_minutes is None or 0 <= event.actual_minutes <= MAX_MINUTES
    assert event.operation is None or 1 <= event.operation <= MAX_OPERATION
    event.canonical_json()


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(good_event, values))
def test_parse_event_refuses_or_accepts_within_range(raw: Any) -> None:
    try:
        event = parse_event(raw)
    except EventFormatError as exc:
        assert exc.message and len(exc.message) < 1000
        return
    _check(event)


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["good", "scrap", "rework", "kwh", "actual_minutes", "operation"]), numbers))
def test_numbers_of_every_kind_in_the_numeric_fields(fields: dict[str, Any]) -> None:
    raw = {"event_id": "E", "work_order": "WO", "provenance": "sensor", "source_time": "2026-01-01T00:00:00Z",
           "good": 1, **fields}
    try:
        _check(parse_event(raw))
    except EventFormatError as exc:
        assert exc.field in fields


@settings(max_examples=200)
@given(st.binary(max_size=600) | st.lists(st.sampled_from([b"{", b"}", b"[", b"\"", b"1e999", b"\n", b"\xff", b"\x00",
                                                           b"null", b":", b","]), max_size=60).map(b"".join))
def test_read_jsonl_never_raises_and_every_value_parses_or_is_refused(data: bytes) -> None:
    for value in read_jsonl(data):
        with contextlib.suppress(EventFormatError):
            _check(parse_event(value))


COLUMN_SETS = [ITEM_COLUMNS, LOCATION_COLUMNS, BALANCE_COLUMNS, BOM_COLUMNS, WORK_CENTER_COLUMNS, OPERATION_COLUMNS]
cells = st.one_of(st.text(max_size=20), numbers.map(str), st.sampled_from(["", " ", "\ufeff", "1;2", "\"", "a\"b",
                                                                          "1" * 50, "9" * 25]))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(COLUMN_SETS))), st.lists(st.lists(cells, max_size=12), max_size=6),
       st.sampled_from([",", ";", "\t"]), st.booleans(), st.binary(max_size=40))
def test_csv_parsers_never_raise(which: int, rows: list[list[str]], sep: str, bom: bool, noise: bytes) -> None:
    columns = COLUMN_SETS[which]
    header = sep.join(c.name for c in columns)
    text = "\n".join([header] + [sep.join(row) for row in rows])
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8", errors="surrogatepass") + noise
    for blob in (data, noise, data[: len(data) // 2]):
        table = parse_csv(blob, columns, name="fuzz.csv")
        for row in table.rows:
            for value in row.data.values():
                if isinstance(value, Decimal):
                    assert abs(value) <= Decimal(10**9)
                if isinstance(value, int) and not isinstance(value, bool):
                    assert value <= MAX_OPERATION
