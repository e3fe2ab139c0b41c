"""Every route x every role through a real ``mes-bridge serve``: 401 without a token, with a bad or a revoked one;
403 when the role, or a terminal's work centers / a collector's machines, do not allow the call; otherwise the call
is taken (whatever the domain then answers, never a server error). Also: request bodies refuse fields nobody may
set (costs, values, statuses, ids the service assigns) with 422 naming the field."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.api_server import ApiServer

pytestmark = pytest.mark.e2e

READERS = {"planner", "accountant", "admin"}
VALID = {"terminal_assy", "terminal_laser", "collector_press", "collector_laser", *READERS}
NO_TOKEN = {"none", "bad", "revoked"}
EVENT = {"work_order": "WO-1", "operation": 20, "good": 1, "machine": "PRESS-1", "work_center": "WC-PRESS",
         "provenance": "sensor", "source_time": "2026-11-22T10:00:00Z"}

# (method, path template, concrete path, body or None, principals allowed)
ROUTES: list[tuple[str, str, str, Any, set[str]]] = [
    ("POST", "/events", "/events", "events", {"collector_press", "planner", "admin"}),
    ("GET", "/events/problems", "/events/problems", None, READERS),
    ("GET", "/scan/{barcode}", "/scan/WO-1", None, {"terminal_assy", "terminal_laser", "admin"}),
    ("POST", "/scan/report", "/scan/report", {"work_order": "WO-1", "operation": 30, "good": 1},
     {"terminal_assy", "admin"}),
    ("POST", "/work-orders", "/work-orders", "release", {"planner", "admin"}),
    ("POST", "/work-orders/{order_id}/close", "/work-orders/WO-404/close", None, READERS),
    ("GET", "/work-orders/{order_id}", "/work-orders/WO-1", None, {"terminal_assy", "terminal_laser", *READERS}),
    ("POST", "/machines/{machine}/work-order", "/machines/VISION-1/work-order", {"work_order": "WO-1"},
     {"terminal_assy", "planner", "admin"}),
    ("GET", "/machines/{machine}/work-order", "/machines/PRESS-1/work-order", None, {"collector_press", *READERS}),
    ("GET", "/machines/work-orders", "/machines/work-orders?machine=PRESS-1", None, {"collector_press", *READERS}),
    ("GET", "/wip", "/wip", None, READERS),
    ("GET", "/ledger/onhand", "/ledger/onhand", None, READERS),
    ("GET", "/ledger/moves", "/ledger/moves", None, READERS),
    ("POST", "/ledger/receipts", "/ledger/receipts",
     {"item": "RM-BOLT", "qty": "1", "to_location": "STORES", "unit_cost": "0.10"}, {"planner", "admin"}),
    ("POST", "/ledger/issues", "/ledger/issues", {"item": "RM-BOLT", "qty": "1", "from_location": "STORES"},
     {"planner", "admin"}),
    ("POST", "/ledger/transfers", "/ledger/transfers",
     {"item": "RM-BOLT", "qty": "1", "from_location": "STORES", "to_location": "QUAR"}, {"planner", "admin"}),
    ("POST", "/ledger/counts", "/ledger/counts",
     {"item": "RM-BOLT", "location": "STORES", "delta": "1", "reason": "found in a drawer"}, {"planner", "admin"}),
    ("POST", "/ledger/quarantine-decisions", "/ledger/quarantine-decisions",
     {"item": "RM-BOLT", "qty": "1", "from_location": "QUAR", "accept_to": "STORES"}, {"planner", "admin"}),
    ("GET", "/bom/{item}/explode", "/bom/FG-BRACKET/explode?qty=2", None, READERS),
    ("GET", "/bom/{item}/where-used", "/bom/RM-STEEL/where-used", None, READERS),
    ("GET", "/bom/{item}/diff", "/bom/FG-BRACKET/diff?from=A&to=A", None, READERS),
    ("GET", "/bom/{item}/rollup", "/bom/FG-BRACKET/rollup", None, READERS),
    ("POST", "/bom/net-requirements", "/bom/net-requirements",
     {"plan": [{"item": "FG-BRACKET", "qty": "5", "due": "2026-12-01"}]}, READERS),
    ("GET", "/routings/{item}", "/routings/FG-BRACKET?as_of=2026-11-22", None, READERS),
    ("GET", "/work-centers", "/work-centers", None, READERS),
    ("GET", "/journal/entries", "/journal/entries", None, {"accountant", "admin"}),
    ("GET", "/journal/export.csv", "/journal/export.csv", None, {"accountant", "admin"}),
    ("GET", "/collectors/health", "/collectors/health", None, READERS),
    ("POST", "/collectors/health", "/collectors/health", {"machines": [{"machine": "PRESS-1", "connected": True}]},
     {"collector_press", "admin"}),
    ("POST", "/tokens", "/tokens", {"role": "accountant", "name": "matrix"}, {"admin"}),
    ("GET", "/tokens", "/tokens", None, {"admin"}),
    ("POST", "/tokens/{token_id}/revoke", "/tokens/9999/revoke", None, {"admin"}),
    ("GET", "/auth/me", "/auth/me", None, VALID),
    ("GET", "/dashboard.json", "/dashboard.json", None, READERS),
]
PUBLIC = {("GET", "/health"), ("GET", "/metrics"), ("GET", "/terminal"), ("GET", "/dashboard")}


def _body(kind: Any, who: str) -> Any:
    if kind == "events":
        return [{**EVENT, "event_id": f"matrix:{who}"}]
    if kind == "release":
        return {"id": f"WO-M-{who}"[:64], "item": "FG-BRACKET", "qty": "1", "date": "2026-11-22"}
    if isinstance(kind, dict) and "good" in kind:
        return {**kind, "report_id": f"matrix-{who}"}
    return kind


@pytest.fixture
def principals(api: ApiServer) -> dict[str, dict[str, str]]:
    admin = api.token("admin")  # the first one from the command line, the others through the API
    bindings: dict[str, dict[str, Any]] = {
        "terminal_assy": {"role": "terminal", "work_centers": ["WC-ASSY"], "name": "T-ASSY-1"},
        "terminal_laser": {"role": "terminal", "work_centers": ["WC-LASER"], "name": "T-LASER-1"},
        "collector_press": {"role": "collector", "machines": ["PRESS-1"]},
        "collector_laser": {"role": "collector", "machines": ["LASER-1"]},
        "planner": {"role": "planner"}, "accountant": {"role": "accountant"}, "revoked": {"role": "admin"},
    }
    tokens = {"admin": admin}
    with api.client(admin) as http:
        for who, body in bindings.items():
            made = http.post("/tokens", json=body)
            assert made.status_code == 201, made.text
            tokens[who] = made.json()["token"]
            if who == "revoked":
                assert http.post(f"/tokens/{made.json()['id']}/revoke").status_code == 200
    headers = {who: {"Authorization": f"Bearer {token}"} for who, token in tokens.items()}
    headers["none"] = {}
    headers["bad"] = {"Authorization": "Bearer mesb_not-a-token"}
    return headers


def test_every_route_for_every_role(api: ApiServer, principals: dict[str, dict[str, str]]) -> None:
    schema = httpx.get(f"{api.url}/openapi.json").json()
    documented = {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}
    assert documented - PUBLIC == {(m, p) for m, p, *_ in ROUTES}, "a route is missing from the matrix"

    wrong: list[str] = []
    with httpx.Client(base_url=api.url, timeout=30) as http:
        for method, template, path, body, allowed in ROUTES:
            for who, headers in principals.items():
                kwargs = {} if body is None else {"json": _body(body, who)}
                answer = http.request(method, path, headers=headers, **kwargs)
                if who in NO_TOKEN:
                    expected = "401"
                    ok = answer.status_code == 401
                elif who in allowed:
                    expected = "taken (not 401/403/5xx)"
                    ok = answer.status_code not in (401, 403) and answer.status_code < 500
                else:
                    expected = "403"
                    ok = answer.status_code == 403
                if ok and answer.status_code >= 400:
                    ok = isinstance(answer.json().get("detail"), str) and bool(answer.json()["detail"])
                if not ok:
                    wrong.append(f"{method} {template} as {who}: {answer.status_code} {answer.text[:160]} "
                                 f"(expected {expected})")
    assert wrong == []


def test_bindings_are_named_in_the_refusal(api: ApiServer, principals: dict[str, dict[str, str]]) -> None:
    with httpx.Client(base_url=api.url, timeout=30) as http:
        report = http.post("/scan/report", headers=principals["terminal_laser"],
                           json={"work_order": "WO-1", "operation": 30, "good": 1})
        assert report.status_code == 403
        assert report.json()["detail"] == ("operation 30 of work order WO-1 is at WC-ASSY; this terminal reports "
                                           "for WC-LASER")
        foreign = http.post("/events", headers=principals["collector_laser"],
                            json=[{**EVENT, "event_id": "spoofed"}])
        assert foreign.status_code == 403 and "machine 'PRESS-1'" in foreign.json()["detail"]
        assert "LASER-1" in foreign.json()["detail"]
        # Nothing of a refused request was stored.
        problems = http.get("/events/problems", headers=principals["admin"]).json()["rows"]
        assert all(p["event_id"] != "spoofed" for p in problems)


MASS_ASSIGNMENT: list[tuple[str, dict[str, Any], str]] = [
    ("/scan/report", {"work_order": "WO-1", "operation": 30, "good": 1, "value": "0.01"}, "value"),
    ("/scan/report", {"work_order": "WO-1", "operation": 30, "good": 1, "provenance": "sensor"}, "provenance"),
    ("/scan/report", {"work_order": "WO-1", "operation": 30, "good": 1, "work_center": "WC-ASSY"}, "work_center"),
    ("/work-orders", {"id": "WO-X", "item": "FG-BRACKET", "qty": "1", "status": "closed"}, "status"),
    ("/work-orders", {"id": "WO-X", "item": "FG-BRACKET", "qty": "1", "bom_revision": "Z"}, "bom_revision"),
    ("/ledger/issues", {"item": "RM-BOLT", "qty": "1", "from_location": "STORES", "value": "0.00"}, "value"),
    ("/ledger/receipts", {"item": "RM-BOLT", "qty": "1", "to_location": "STORES", "unit_cost": "1",
                          "balance": "999"}, "balance"),
    ("/ledger/transfers", {"item": "RM-BOLT", "qty": "1", "from_location": "STORES", "to_location": "QUAR",
                           "actor": "someone else"}, "actor"),
    ("/machines/VISION-1/work-order", {"work_order": "WO-1", "operation": 10}, "operation"),
    ("/collectors/health", {"machines": [{"machine": "PRESS-1", "connected": True, "reported_by": "x"}]},
     "reported_by"),
    ("/tokens", {"role": "admin", "token_hash": "0" * 64}, "token_hash"),
]


def test_fields_nobody_may_set_are_refused(api: ApiServer, principals: dict[str, dict[str, str]]) -> None:
    with httpx.Client(base_url=api.url, headers=principals["admin"], timeout=30) as http:
        before = http.get("/ledger/moves").json()
        for path, body, field in MASS_ASSIGNMENT:
            answer = http.post(path, json=body)
            assert answer.status_code == 422, (path, answer.text)
            assert f".{field}: is not a field you can send" in answer.json()["detail"], (path, answer.text)
        assert http.get("/ledger/moves").json() == before
        assert http.get("/work-orders/WO-X").status_code == 404
        assert http.get("/work-orders/WO-1").json()["operations"][-1]["waiting"] == "3"


def test_an_event_with_a_computed_field_is_stored_as_rejected(api: ApiServer) -> None:
    with api.client(api.token("admin")) as http:
        answer = http.post("/events", json=[{**EVENT, "event_id": "with-cost", "operation": 30,
                                             "work_center": "WC-ASSY", "machine": None, "cost": "0.01"}])
        assert answer.status_code == 200
        assert answer.json() == [{"event_id": "with-cost", "status": "rejected",
                                  "reason": "event 'with-cost': field 'cost': is not a field of an operation event"}]
        assert http.get("/work-orders/WO-1").json()["operations"][-1]["waiting"] == "3"
