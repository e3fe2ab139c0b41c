"""The interpreter's switch interval is changed only by a worker that asks for it (``InProcessForwarder``'s
``switch_interval``, ``mes-bridge collect --switch-interval``), only while a batch is applied, and is restored
afterwards, also when the batch fails and when blocks overlap in threads."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

import pytest

from mes_bridge.forwarder import InProcessForwarder, switch_interval
from wip_costing.commands import ApplyEvents
from wip_costing.events import EventOutcome, Status


class RecordingServices:
    """Stands in for ``Services``: notes the switch interval in force while a command runs."""

    def __init__(self, fail: bool = False) -> None:
        self.seen: list[float] = []
        self.fail = fail

    def handle(self, command: Any) -> list[EventOutcome]:
        assert isinstance(command, ApplyEvents)
        self.seen.append(sys.getswitchinterval())
        if self.fail:
            raise RuntimeError("database gone")
        return [EventOutcome(e, Status.APPLIED) for e in command.events]


def forward(forwarder: InProcessForwarder) -> Any:
    return asyncio.run(forwarder.forward(["e1"]))  # type: ignore[list-item]


def test_by_default_the_process_setting_is_left_alone() -> None:
    before = sys.getswitchinterval()
    services = RecordingServices()
    assert [o.status for o in forward(InProcessForwarder(services))] == [Status.APPLIED]  # type: ignore[arg-type]
    assert services.seen == [before] and sys.getswitchinterval() == before


def test_a_worker_that_asks_gets_it_during_the_batch_and_the_setting_is_restored() -> None:
    before = sys.getswitchinterval()
    services = RecordingServices()
    forward(InProcessForwarder(services, switch_interval=0.0001))  # type: ignore[arg-type]
    assert services.seen == [pytest.approx(0.0001)]
    assert sys.getswitchinterval() == before
    failing = RecordingServices(fail=True)
    with pytest.raises(RuntimeError, match="database gone"):
        forward(InProcessForwarder(failing, switch_interval=0.0001))  # type: ignore[arg-type]
    assert failing.seen == [pytest.approx(0.0001)] and sys.getswitchinterval() == before


def test_overlapping_blocks_restore_the_setting_when_the_last_one_ends() -> None:
    before = sys.getswitchinterval()
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with switch_interval(0.0002):
            inside.set()
            release.wait(timeout=10)

    thread = threading.Thread(target=other)
    with switch_interval(0.0001):
        thread.start()
        assert inside.wait(timeout=10), "the other block did not start"
    assert sys.getswitchinterval() == pytest.approx(0.0001)  # the other block still runs: not restored yet
    release.set()
    thread.join(timeout=10)
    assert sys.getswitchinterval() == before
