"""The scan terminal's JSON through a real ``mes-bridge serve``: what a barcode shows at this terminal's work center,
a report applied, refused with the quantity waiting, re-sent harmlessly; refusals a person can act on."""

from __future__ import annotations

import pytest

from tests.e2e.api_server import ApiServer

pytestmark = pytest.mark.e2e


def test_identify_report_and_refusals(api: ApiServer) -> None:
    assembly = api.client(api.token("terminal", work_centers=("WC-ASSY",), name="T-ASSY-1"))
    laser = api.client(api.token("terminal", work_centers=("WC-LASER",), name="T-LASER-1"))
    with assembly, laser:
        shown = assembly.get("/scan/WO-1")
        assert shown.status_code == 200, shown.text
        assert shown.json() == {"work_order": "WO-1", "item": "FG-BRACKET", "qty": "10", "bom_revision": "A",
                                "routing_revision": "A", "operation": 30, "work_center": "WC-ASSY",
                                "quality_standard": "Visual + torque check QS-7", "waiting": "3", "serial": None}
        elsewhere = laser.get("/scan/WO-1")
        assert elsewhere.status_code == 409
        assert elsewhere.json() == {"detail": "work order WO-1: no units are waiting at operation 10 at WC-LASER "
                                              "(waiting: 3 at operation 30)"}
        unknown = assembly.get("/scan/NOPE-42")
        assert unknown.status_code == 404
        assert unknown.json() == {"detail": "barcode 'NOPE-42' is neither a work order nor a serial number of one"}

        too_many = assembly.post("/scan/report", json={"work_order": "WO-1", "operation": 30, "good": 4})
        assert too_many.status_code == 422
        body = too_many.json()
        assert body["status"] == "rejected" and body["event_id"].startswith("terminal:")
        assert body["detail"] == body["reason"] and "exceeds the 3 waiting" in body["detail"]
        assert "WO-1 operation 30" in body["detail"]

        report = {"work_order": "WO-1", "operation": 30, "good": 1, "scrap": 0, "actual_minutes": "3.5",
                  "operator": "E-107", "report_id": "T-ASSY-1-0001", "reported_at": "2026-11-22T10:00:00Z"}
        done = assembly.post("/scan/report", json=report)
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "applied"
        again = assembly.post("/scan/report", json=report)  # the terminal did not see the answer and re-sends
        assert again.json() == {**done.json(), "status": "duplicate"}
        assert assembly.get("/scan/WO-1").json()["waiting"] == "2"

        problems = api.client(api.token("accountant"))
        with problems:
            rows = problems.get("/events/problems", params={"status": "rejected"}).json()["rows"]
        assert [r["event_id"] for r in rows] == [body["event_id"]]
        assert rows[0]["reason"] == body["reason"]
