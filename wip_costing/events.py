"""``OperationEvent``: what collectors, scan terminals and manual entry all produce, and its outcomes.

Invariants:
- An event is immutable and fully validated: quantities are non-negative ``Decimal`` of at most
  ``QTY_PLACES`` decimal places (what the database stores), at least one of good / scrap / rework is positive,
  the source time is timezone-aware.
- ``fingerprint()`` is the canonical content: the same id with the same fingerprint is a duplicate,
  the same id with another fingerprint is a conflict.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Context, Decimal
from enum import StrEnum
from typing import Any, NamedTuple

from ledger.model import QTY_PLACES, decimal_places
from mes_common.errors import DomainError
from mes_common.limits import (
    CODE_LENGTH,
    EARLIEST,
    EVENT_ID_LENGTH,
    LATEST,
    MAX_KWH,
    MAX_MINUTES,
    MAX_OPERATION,
    MAX_QTY,
    out_of_range,
    range_text,
    too_long,
)
from mes_common.money import ZERO, BadNumber, dec, fmt_qty
from mes_common.provenance import Provenance

_QTY_QUANTUM = Decimal(1).scaleb(-QTY_PLACES)  # a quantity has at most QTY_PLACES places, as the database stores
_WIDE = Context(prec=100)  # quantizing a parsed quantity never rounds for lack of digits

FIELDS = (
    "event_id", "work_order", "serial", "operation", "good", "scrap", "rework", "kwh",
    "actual_minutes", "operator", "machine", "work_center", "provenance", "source_time", "lot",
)

_FIELD_SET = frozenset(FIELDS)


class EventFormatError(DomainError):
    """An event that cannot be read: names the event (if it has an id) and the field."""

    code = "bad_event"

    def __init__(self, event_id: str | None, field: str, problem: str) -> None:
        where = f"event {event_id!r}" if event_id else "event without an id"
        super().__init__(f"{where}: field {field!r}: {problem}")
        self.event_id = event_id
        self.field = field


class UnreadableLine(NamedTuple):
    """A line of a JSON-lines file that is not a JSON value: rejected (and stored) with its line number and the
    decoder's error, like any event that cannot be read."""

    line: int
    error: str
    text: str


class Status(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    REJECTED = "rejected"


class EventOutcome(NamedTuple):
    event_id: str | None
    status: Status
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "status": self.status.value, "reason": self.reason}


class OperationEvent(NamedTuple):
    """One completion as reported (a named tuple: thousands are built per batch, and a tuple is immutable and
    cheap to build)."""

    event_id: str
    source_time: datetime
    provenance: Provenance
    work_order: str | None = None
    serial: str | None = None
    operation: int | None = None
    good: Decimal = Decimal(0)
    scrap: Decimal = Decimal(0)
    rework: Decimal = Decimal(0)
    kwh: Decimal | None = None
    actual_minutes: Decimal | None = None
    operator: str | None = None
    machine: str | None = None
    work_center: str | None = None
    lot: str | None = None  # the lot of the components to issue (default: oldest lots first)

    @property
    def processed(self) -> Decimal:
        """Units processed by this completion: good + scrap + rework."""
        return self.good + self.scrap + self.rework

    def to_json(self) -> dict[str, Any]:
        """The SPEC.md "Interfaces" JSON shape; numbers as decimal strings."""
        return {
            "event_id": self.event_id,
            "work_order": self.work_order,
            "serial": self.serial,
            "operation": self.operation,
            "good": fmt_qty(self.good),
            "scrap": fmt_qty(self.scrap),
            "rework": fmt_qty(self.rework),
            "kwh": None if self.kwh is None else fmt_qty(self.kwh),
            "actual_minutes": None if self.actual_minutes is None else fmt_qty(self.actual_minutes),
            "operator": self.operator,
            "machine": self.machine,
            "work_center": self.work_center,
            "provenance": self.provenance.value,
            "source_time": _utc_text(self.source_time),
        } | ({} if self.lot is None else {"lot": self.lot})  # no "lot" key without one: fingerprints stay as they were

    def canonical_json(self) -> str:
        """The event's content as compact JSON with sorted keys: what the fingerprint hashes, and what is stored.

        Exactly ``json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))``, written out by hand (this
        runs once per event on the hot path): keys in sorted order, strings through ``_json_text``.
        """
        if (type(self.operation) is not int and self.operation is not None) or self.lot is not None:
            return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        j, q = _json_text, _qty_json
        kwh, minutes, machine, operator = self.kwh, self.actual_minutes, self.machine, self.operator
        serial, work_center, work_order = self.serial, self.work_center, self.work_order
        # Quantities, the provenance and the time are plain ASCII (digits, letters, "-", ":", "."): quoted as they are.
        return (
            f'{{"actual_minutes":{"null" if minutes is None else q(minutes)},'
            f'"event_id":{j(self.event_id)},"good":{q(self.good)},'
            f'"kwh":{"null" if kwh is None else q(kwh)},"machine":{"null" if machine is None else j(machine)},'
            f'"operation":{"null" if self.operation is None else self.operation},'
            f'"operator":{"null" if operator is None else j(operator)},'
            f'"provenance":"{self.provenance!s}","rework":{q(self.rework)},'
            f'"scrap":{q(self.scrap)},"serial":{"null" if serial is None else j(serial)},'
            f'"source_time":"{_utc_text(self.source_time)}",'
            f'"work_center":{"null" if work_center is None else j(work_center)},'
            f'"work_order":{"null" if work_order is None else j(work_order)}}}'
        )

    def fingerprint(self) -> str:
        return fingerprint_of(self.canonical_json())


def fingerprint_of(canonical: str) -> str:
    """The fingerprint of an event's canonical JSON (for callers that keep the JSON too)."""
    return hashlib.sha256(canonical.encode()).hexdigest()


_UTC_TEXTS: dict[datetime, str] = {}


def _utc_text(moment: datetime) -> str:
    """``moment`` in UTC as ISO 8601 with ``Z`` (remembered: a batch's events share few distinct times)."""
    text = _UTC_TEXTS.get(moment)
    if text is None:
        if len(_UTC_TEXTS) > 10_000:
            _UTC_TEXTS.clear()
        text = _UTC_TEXTS[moment] = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return text


def _qty_json(qty: Decimal) -> str:
    """``json.dumps(fmt_qty(qty))``: a quantity's text is plain ASCII (digits, "." and "-")."""
    return f'"{fmt_qty(qty)}"'


def _json_text(value: object) -> str:
    """``json.dumps(value)`` for a string or None; printable ASCII without quote or backslash goes as it is."""
    if value is None:
        return "null"
    if type(value) is str and value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return json.dumps(value)


def _shown(value: Any) -> str:
    """``repr(value)``, cut short: a refused field is quoted in a message that is stored and printed."""
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:80]}... ({len(text)} characters)"


def _text_value(value: Any, field: str, event_id: str | None, *, required: bool = False,
                limit: int = CODE_LENGTH) -> str | None:
    """A text field's ``value`` checked (None or "" is no value): a string of printable characters without
    surrounding spaces, at most ``limit`` long."""
    if value is None or value == "":
        if required:
            raise EventFormatError(event_id, field, "is required")
        return None
    if not isinstance(value, str):
        raise EventFormatError(event_id, field, f"must be a string, got {_shown(value)}")
    if len(value) > limit:
        raise EventFormatError(event_id, field, str(too_long(value, limit)))
    if value != value.strip() or not value.isprintable():
        raise EventFormatError(event_id, field, f"{_shown(value)} has surrounding spaces or invisible characters")
    return value


def _quantity(value: Any, field: str, event_id: str | None, maximum: Decimal = MAX_QTY) -> Decimal | None:
    """A quantity field's ``value`` checked (None or "" is no value): 0 to ``maximum``, at most ``QTY_PLACES``."""
    if value is None or value == "":
        return None
    if type(value) is int:  # the common case (counts), and exact
        if 0 <= value <= maximum:
            return Decimal(value)
        number = Decimal(value)
    else:
        if isinstance(value, float):
            # JSON numbers parsed as float: their shortest repr is the number that was written.
            value = repr(value)
        if isinstance(value, str) and len(value) > 40:
            raise EventFormatError(event_id, field, f"{_shown(value)} is not a decimal number of at most 40 "
                                                    "characters")
        try:
            number = dec(value, field=field)
        except BadNumber as exc:
            problem = str(exc).split(": ", 1)[-1]  # dec names the field too
            if len(problem) > 160:
                problem = f"{_shown(value)} is not a number"
            raise EventFormatError(event_id, field, f"{problem} (allowed: {range_text(ZERO, maximum)})") from None
    if number < 0:
        raise EventFormatError(event_id, field, f"must not be negative, got {_shown(value)}")
    if number > maximum:
        raise EventFormatError(event_id, field, str(out_of_range(number, maximum=maximum)))
    if decimal_places(number) > QTY_PLACES:  # "1.50000000" is 1.5; "1.0000001" is refused
        exact = number.quantize(_QTY_QUANTUM, context=_WIDE)
        if exact != number:
            raise EventFormatError(event_id, field, f"{fmt_qty(number)} has more than {QTY_PLACES} decimal places")
        number = exact
    return number


def _time(raw: Mapping[str, Any], event_id: str | None) -> datetime:
    value = raw.get("source_time")
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)  # Python 3.11 reads a "Z" suffix itself
        except ValueError:
            raise EventFormatError(event_id, "source_time", f"{_shown(value)} is not an ISO 8601 timestamp") from None
    elif value is None or value == "":
        raise EventFormatError(event_id, "source_time", "is required (ISO 8601 with a timezone)")
    else:
        raise EventFormatError(event_id, "source_time", f"must be an ISO 8601 string, got {_shown(value)}")
    if moment.tzinfo is None:
        raise EventFormatError(event_id, "source_time", f"{value!r} has no timezone")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        moment = EARLIEST.replace(year=1) if moment.year < 2000 else LATEST
    if not EARLIEST <= moment <= LATEST:
        raise EventFormatError(event_id, "source_time", f"{value!r} is out of range (allowed: "
                                                        f"{EARLIEST.date()} to {LATEST.date()}, UTC)")
    return moment


_PROVENANCES = {p.value: p for p in Provenance}


def parse_event(raw: Mapping[str, Any]) -> OperationEvent:
    """Validate one event in the SPEC.md JSON shape; raises ``EventFormatError`` naming the field.

    A hot path (every event of every batch): each field is read once, and an absent optional field costs one
    look-up (no call)."""
    if not isinstance(raw, Mapping):
        if isinstance(raw, UnreadableLine):
            raise EventFormatError(None, f"(line {raw.line})", f"not JSON: {raw.error}")
        raise EventFormatError(None, "(event)", f"must be a JSON object, got {type(raw).__name__} {_shown(raw)}")
    get = raw.get
    event_id = _text_value(get("event_id"), "event_id", None, required=True, limit=EVENT_ID_LENGTH)
    assert event_id is not None
    if not _FIELD_SET.issuperset(raw):
        unknown = sorted(str(k) for k in set(raw) - _FIELD_SET)
        raise EventFormatError(event_id, unknown[0][:64], "is not a field of an operation event")
    provenance_text = _text_value(get("provenance"), "provenance", event_id, required=True)
    assert provenance_text is not None
    provenance = _PROVENANCES.get(provenance_text)
    if provenance is None:
        choices = ", ".join(p.value for p in Provenance)
        raise EventFormatError(event_id, "provenance", f"{provenance_text!r} is not one of {choices}")
    operation_raw = get("operation")
    operation: int | None
    if operation_raw is None or operation_raw == "":
        operation = None
    elif isinstance(operation_raw, int) and not isinstance(operation_raw, bool):
        operation = operation_raw
    elif isinstance(operation_raw, str) and operation_raw.isascii() and operation_raw.isdigit() \
            and len(operation_raw) <= 9:
        operation = int(operation_raw)
    else:
        raise EventFormatError(event_id, "operation", f"{_shown(operation_raw)} is not an operation number")
    if operation is not None and not 1 <= operation <= MAX_OPERATION:
        raise EventFormatError(event_id, "operation", f"{_shown(operation)} is out of range (allowed: 1 to "
                                                      f"{MAX_OPERATION:,})")
    good = _quantity(get("good"), "good", event_id) or ZERO
    scrap = _quantity(get("scrap"), "scrap", event_id) or ZERO
    rework = _quantity(get("rework"), "rework", event_id) or ZERO
    if good + scrap + rework <= 0:
        raise EventFormatError(event_id, "good", "good + scrap + rework must be positive")
    work_order = get("work_order")
    if work_order is not None:
        work_order = _text_value(work_order, "work_order", event_id)
    serial = get("serial")
    if serial is not None:
        serial = _text_value(serial, "serial", event_id)
    if work_order is None and serial is None:
        raise EventFormatError(event_id, "work_order", "is required (or a serial number resolving to one)")
    kwh, minutes = get("kwh"), get("actual_minutes")
    operator, machine, work_center, lot = get("operator"), get("machine"), get("work_center"), get("lot")
    return OperationEvent(
        event_id, _time(raw, event_id), provenance, work_order, serial, operation, good, scrap, rework,
        None if kwh is None else _quantity(kwh, "kwh", event_id, MAX_KWH),
        None if minutes is None else _quantity(minutes, "actual_minutes", event_id, MAX_MINUTES),
        None if operator is None else _text_value(operator, "operator", event_id),
        None if machine is None else _text_value(machine, "machine", event_id),
        None if work_center is None else _text_value(work_center, "work_center", event_id),
        None if lot is None else _text_value(lot, "lot", event_id),
    )


def read_jsonl(data: bytes) -> list[Any]:
    """The values of a JSON-lines file, one per non-blank line; a line that is not JSON (bad syntax, not UTF-8,
    a number too long for the decoder, nesting too deep) becomes an ``UnreadableLine`` naming its line number and
    the decoder's error, which ``parse_event`` rejects like any other unreadable event."""
    values: list[Any] = []
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        shown = line[:200].decode("utf-8", errors="replace")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            values.append(UnreadableLine(number, f"not UTF-8 (byte 0x{line[exc.start]:02X} at column "
                                                 f"{exc.start + 1})", shown))
            continue
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]  # a byte-order mark, as some editors write it
        try:
            values.append(json.loads(text))
        except json.JSONDecodeError as exc:
            values.append(UnreadableLine(number, f"{exc.msg} at column {exc.colno}", shown))
        except (ValueError, RecursionError) as exc:  # digits beyond the int limit, nesting beyond the stack
            values.append(UnreadableLine(number, str(exc)[:200] or type(exc).__name__, shown))
    return values
