"""API tokens (stored hashed, revocable, bound by role) and collectors' reported health, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from mes_bridge.health_reports import MachineHealth, machine_health, record_health
from mes_bridge.tokens import Role, TokenRefused, api_tokens, create_token, find_token, hash_token, revoke_token

pytestmark = pytest.mark.integration


def test_a_token_is_stored_only_as_its_hash_and_stops_working_when_revoked(engine: Engine) -> None:
    with engine.begin() as conn:
        secret, record = create_token(conn, "terminal", work_centers=("WC-ASSY", "WC-ASSY"), name="T-ASSY-1")
    assert record.role is Role.TERMINAL and record.work_centers == ("WC-ASSY",) and record.name == "T-ASSY-1"
    with engine.connect() as conn:
        stored = conn.execute(select(api_tokens)).one()._mapping
        assert secret not in [str(v) for v in stored.values()] and stored["token_hash"] == hash_token(secret)
        assert find_token(conn, secret) == record
        assert find_token(conn, secret + "x") is None
    with engine.begin() as conn:
        revoked = revoke_token(conn, record.id)
    assert revoked.revoked_at is not None
    with engine.connect() as conn:
        assert find_token(conn, secret) is None
    with engine.begin() as conn, pytest.raises(TokenRefused, match=f"token {record.id} .* already revoked"):
        revoke_token(conn, record.id)


@pytest.mark.parametrize(("role", "bindings", "message"), [
    ("terminal", {}, "needs at least one --work-center"),
    ("collector", {}, "needs at least one --machine"),
    ("planner", {"machines": ("PRESS-1",)}, "only collector tokens are bound to machines"),
    ("admin", {"work_centers": ("WC-ASSY",)}, "only terminal tokens are bound to work centers"),
    ("operator", {}, "role 'operator' is not one of terminal, collector, planner, accountant, admin"),
    ("collector", {"machines": (" PRESS-1",)}, "surrounding spaces"),
])
def test_a_token_that_makes_no_sense_is_refused(sqlite_engine: Engine, role: str, bindings: dict[str, tuple[str]],
                                                message: str) -> None:
    with sqlite_engine.begin() as conn, pytest.raises(TokenRefused, match=message):
        create_token(conn, role, **bindings)


def test_a_machine_reported_twice_in_one_report_keeps_its_last_figures(engine: Engine) -> None:
    reports = [MachineHealth("PRESS-1", False, None, 3, 0.0, "connection refused"),
               MachineHealth("LASER-1", True, 0.2, 0, 1.5),
               MachineHealth("PRESS-1", True, 0.5, 0, 2.0)]
    with engine.begin() as conn:
        record_health(conn, reports, "collector:PRESS-1,LASER-1")
    with engine.begin() as conn:
        record_health(conn, [MachineHealth("LASER-1", False, 9.0, 7, 0.0, "timeout")], "collector:LASER-1")
    with engine.connect() as conn:
        rows = {r["machine"]: r for r in machine_health(conn)}
    assert sorted(rows) == ["LASER-1", "PRESS-1"]
    assert (rows["PRESS-1"]["connected"], rows["PRESS-1"]["spool_depth"], rows["PRESS-1"]["error"]) == (True, 0, None)
    assert (rows["LASER-1"]["connected"], rows["LASER-1"]["spool_depth"], rows["LASER-1"]["error"]) == (
        False, 7, "timeout")
    assert rows["LASER-1"]["reported_by"] == "collector:LASER-1"
