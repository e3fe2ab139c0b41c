"""``GET /machines/work-orders``: the orders scanned at many machines in one request (what a collector forwarding
over HTTP asks every second instead of one request per machine), each machine checked as for the one-machine route;
and ``HttpScanFeed`` asking it in chunks, against a real ``mes-bridge serve``."""

from __future__ import annotations

import pytest

from mes_bridge.collectors import http_link
from mes_bridge.collectors.http_link import HttpScanFeed
from tests.e2e.api_server import ApiServer

pytestmark = pytest.mark.e2e


def test_many_machines_in_one_request_each_checked(api: ApiServer) -> None:
    planner = api.token("planner")
    with api.client(planner) as http:
        assert http.post("/machines/PRESS-1/work-order", json={"work_order": "WO-1"}).status_code == 200
        answer = http.get("/machines/work-orders", params=[("machine", "PRESS-1"), ("machine", "LASER-1"),
                                                           ("machine", "PRESS-1")])
        assert answer.status_code == 200, answer.text
        assert answer.json() == [{"machine": "PRESS-1", "work_order": "WO-1"},
                                 {"machine": "LASER-1", "work_order": None}]
        too_many = http.get("/machines/work-orders", params=[("machine", f"M-{n}") for n in range(501)])
        assert too_many.status_code == 422
        assert http.get("/machines/work-orders").status_code == 422  # at least one machine
    collector = api.token("collector", machines=("PRESS-1",))
    with api.client(collector) as http:
        assert http.get("/machines/work-orders", params={"machine": "PRESS-1"}).json() == [
            {"machine": "PRESS-1", "work_order": "WO-1"}]
        foreign = http.get("/machines/work-orders", params=[("machine", "PRESS-1"), ("machine", "LASER-1")])
        assert foreign.status_code == 403
        assert foreign.json()["detail"] == "this collector token is for PRESS-1, not machine LASER-1"


def test_the_scan_feed_asks_in_chunks(api: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_link, "CHUNK", 2)
    with api.client(api.token("planner")) as http:
        assert http.post("/machines/VISION-1/work-order", json={"work_order": "WO-1"}).status_code == 200
        assert http.post("/machines/LASER-1/work-order", json={"work_order": "WO-1"}).status_code == 200
    feed = HttpScanFeed(api.url, api.token("admin"))
    try:
        found = feed.current(["PRESS-1", "LASER-1", "CNC-1", "VISION-1", "LASER-1"])
    finally:
        feed.close()
    assert found == {"LASER-1": "WO-1", "VISION-1": "WO-1"}
