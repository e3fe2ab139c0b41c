"""The dashboard stream's loop (``api.routes.pages.changes``) on its own: what it sends for a marker that moves,
stays, or cannot be read. No server: a stand-in request that never disconnects, and a marker from a list."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy.exc import OperationalError

from api.routes.pages import changes


class _Connected:
    async def is_disconnected(self) -> bool:
        return False


def _markers(*values: Any) -> Any:
    seen: Iterator[Any] = iter(values)

    def marker() -> Any:
        value = next(seen)
        if isinstance(value, Exception):
            raise value
        return value

    return marker


async def _events(marker: Any, polls: int) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    stream = changes(_Connected(), marker, poll_s=0, keepalive_s=1000, max_s=1000)  # type: ignore[arg-type]
    assert await anext(stream) == "retry: 1000\n\n"
    while len(out) < polls:
        chunk = await anext(stream)
        name, data = chunk.split("\n")[:2]
        out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    await stream.aclose()
    return out


async def test_a_change_is_sent_once_and_again_after_the_database_was_away() -> None:
    lost = OperationalError("SELECT 1", {}, Exception("connection refused"))
    events = await _events(_markers((1, 1, 0, 0), (1, 1, 0, 0), (2, 2, 0, 0), lost, (2, 2, 0, 0), (2, 2, 0, 0)),
                           polls=4)
    assert events == [
        ("change", [1, 1, 0, 0]),
        ("change", [2, 2, 0, 0]),  # the unchanged second reading sent nothing
        ("trouble", "the database does not answer: OperationalError"),
        ("change", [2, 2, 0, 0]),  # back: announced again, so the page knows it is live
    ]
