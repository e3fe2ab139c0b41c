"""``ApiServices.apply_events_in_turn``: at most ``writers`` batches are applied at once; the rest wait their turn
(in order) without holding a thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import create_engine

from api.services import ApiServices
from mes_bridge.bootstrap import Services
from wip_costing.events import EventOutcome, Status


class _Counting(ApiServices):
    def __init__(self, writers: int) -> None:
        super().__init__(Services(create_engine("sqlite://")), writers=writers)
        self.lock = threading.Lock()
        self.running = self.most = 0
        self.order: list[str] = []

    def apply_events(self, events: Sequence[Any]) -> list[EventOutcome]:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.order.append(events[0])
        time.sleep(0.02)
        with self.lock:
            self.running -= 1
        return [EventOutcome(events[0], Status.APPLIED)]


async def test_at_most_writers_batches_at_once() -> None:
    services = _Counting(writers=2)
    outcomes = await asyncio.gather(*(services.apply_events_in_turn([f"e{n}"]) for n in range(8)))
    assert [o.event_id for [o] in outcomes] == [f"e{n}" for n in range(8)]
    assert services.most == 2
