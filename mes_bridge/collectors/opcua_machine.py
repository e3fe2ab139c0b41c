"""One machine's nodes on a (possibly shared) OPC UA connection: their values, problems and snapshots.

Several machines served by one OPC UA endpoint share one connection and one subscription (``opcua.OpcUaClient``);
what belongs to each machine lives here: its configured and resolved nodes, the last job and meter value, the
source time of the latest value of each node, the nodes that cannot be used, and its ``MachineSession``.

Invariants:
- A node that cannot be used (bad status, wrong type, namespace not on the server) reads as None and is named in
  the machine's health until it reads again; it is recorded once, and never stops the machine's other nodes.
- A notification older than the last value seen for its node (published before a full read, delivered after it)
  is stale and ignored: an older counter value would look like a controller reset.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from asyncua import ua

from mes_bridge.collectors.core import MachineSession, Snapshot, Value
from mes_bridge.collectors.opcua_setup import Tag, machine_tags, needs_namespaces, resolve_tags, tag_value
from mes_bridge.plc_config import MachineConfig

log = logging.getLogger("mes_bridge.collectors.opcua")

STALE = object()


class MachineNodes:
    """The nodes of one machine on a connection, and the session its readings go to (``bind``)."""

    def __init__(self, config: MachineConfig) -> None:
        self.config = config
        self.machine = config.machine
        # As configured (``nsu=`` ids unresolved); ``tags`` are this connection's resolved nodes.
        self.configured = machine_tags(config)
        self.needs_namespaces = needs_namespaces(self.configured)
        self.tags: list[Tag] = [] if self.needs_namespaces else list(self.configured)
        self.session: MachineSession | None = None
        self.job: str | None = None
        self.energy: Decimal | None = None
        self.stamps: dict[str, datetime] = {}  # source time of the latest value seen per tag
        self._reported_bad: set[str] = set()

    def resolve(self, namespaces: Sequence[str]) -> dict[str, str]:
        """Resolve ``nsu=`` ids against the server's namespace array; returns the unusable tags' problems."""
        if not self.needs_namespaces:
            return {}
        self.tags, problems = resolve_tags(self.configured, namespaces)
        return problems

    def unresolved(self, problems: Mapping[str, str]) -> list[tuple[Tag, str]]:
        return [(tag, problems[tag.name]) for tag in self.configured if tag.name in problems]

    # --------------------------------------------------------------------------------------------- values

    def value(self, tag: Tag, data_value: ua.DataValue, *, notification: bool = False) -> Any:
        """The usable value of a read or notification, None (bad status, wrong type) or ``STALE``."""
        status, variant = data_value.StatusCode, data_value.Value
        stamp = data_value.SourceTimestamp or data_value.ServerTimestamp
        if notification and stamp is not None and tag.name in self.stamps and stamp < self.stamps[tag.name]:
            return STALE
        if stamp is not None:
            self.stamps[tag.name] = stamp
        if status is not None and not status.is_good():
            self.report_bad(tag, f"status {status.name}")
            return None
        try:
            value = tag_value(tag.name, variant.Value if variant is not None else None)
        except (ValueError, ArithmeticError) as exc:
            self.report_bad(tag, str(exc))
            return None
        self._report_good(tag)
        return value

    def report_bad(self, tag: Tag, problem: str) -> None:
        """A node that cannot be used: named in the machine's health (until it reads again) and recorded once."""
        detail = f"{tag.named()}: {problem}"
        if self.session is not None:
            self.session.problem(f"node {tag.name}", detail)
        if tag.name in self._reported_bad:
            return
        self._reported_bad.add(tag.name)
        if self.session is not None:
            self.session.record("node-unusable", detail)
        else:
            log.warning("machine %s: %s unusable", self.machine, detail)

    def _report_good(self, tag: Tag) -> None:
        if tag.name in self._reported_bad:
            self._reported_bad.discard(tag.name)
            if self.session is not None:
                self.session.problem(f"node {tag.name}", None)

    # ------------------------------------------------------------------------------------------- snapshots

    def full_read(self, results: Iterable[tuple[Tag, ua.DataValue]], reason: str) -> Snapshot:
        """The snapshot of a full read (every configured tag; None for those left out on this connection)."""
        values: dict[str, Value] = {tag.name: None for tag in self.configured}
        for tag, data_value in results:
            values[tag.name] = self.value(tag, data_value)
        if "job" in values:
            self.job = values["job"]  # type: ignore[assignment]
        if values.get("energy") is not None:
            self.energy = values["energy"]  # type: ignore[assignment]
        return Snapshot(self.machine, values, datetime.now(UTC), reason)

    def changes(self, notifications: Iterable[tuple[Tag, ua.DataValue]]) -> Snapshot | str | None:
        """What a burst of this machine's notifications means: a snapshot of the changed counters, ``"job"``
        when the job changed (the caller reads everything at once), or None (nothing to count)."""
        changed: dict[str, Value] = {}
        for tag, data_value in notifications:
            value = self.value(tag, data_value, notification=True)
            if value is STALE:
                continue
            good = data_value.StatusCode is None or data_value.StatusCode.is_good()
            if value is not None or (tag.name == "job" and good):
                changed[tag.name] = value
        if "job" in changed and changed["job"] != self.job:
            return "job"
        changed.pop("job", None)  # unchanged; the session keeps the job it knows
        if "energy" in changed:
            self.energy = changed["energy"]  # type: ignore[assignment]
        if not any(name in self.config.counters for name in changed):
            return None  # the meter alone moved: its delta goes with the next parts
        if self.energy is not None:
            changed["energy"] = self.energy
        return Snapshot(self.machine, changed, datetime.now(UTC), "change")
