"""Concurrent releases are serialised: two releases that each look fine alone cannot together form a cycle."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.engine import Engine

from bom import repository as repo
from bom.model import CycleError
from tests.integration.bom.plant import add_raw_items
from tests.unit.bom.helpers import bom, line
from tests.waiting import wait_for_lock_waiter


@pytest.mark.postgres
def test_second_of_two_concurrent_releases_sees_the_first_and_refuses_the_cycle(pg_engine: Engine) -> None:
    with pg_engine.begin() as conn:
        add_raw_items(conn, "A", "B")
        repo.save_boms(conn, [bom("A", line("B", "1")), bom("B", line("A", "1"))])
    first_holds_lock = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        with pg_engine.begin() as conn:
            repo.release_bom(conn, "A", "A")
            first_holds_lock.set()
            # The second release must wait for this commit, not run beside it: hold until it is blocked.
            wait_for_lock_waiter(pg_engine, "the second release to block on the first one's lock")

    def second() -> None:
        first_holds_lock.wait(10)
        try:
            with pg_engine.begin() as conn:
                repo.release_bom(conn, "B", "A")
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(errors) == 1 and isinstance(errors[0], CycleError), errors
    assert errors[0].path == ["B", "A", "B"]
    with pg_engine.begin() as conn:
        assert repo.get_bom(conn, "A", "A").state == "released"
        assert repo.get_bom(conn, "B", "A").state == "draft"
