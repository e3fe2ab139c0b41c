"""``GET /wip``, ``/ledger/onhand`` and ``/work-orders/{id}`` answer exactly the JSON of the CLI's ``--json`` on the
same database (SQLite and PostgreSQL), through a real ``mes-bridge serve`` process."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.api_server import ApiServer, cli, cli_json

pytestmark = pytest.mark.e2e


def test_wip_onhand_and_order_view_equal_the_cli_json(api: ApiServer) -> None:
    with api.client(api.token("accountant")) as http:
        cases = [(by, None) for by in ("order", "operation", "work-center", "element", "provenance")]
        cases += [("operation", "2026-11-22T08:30:00Z"), ("element", "2026-11-22")]
        for by, as_of in cases:
            params = {"by": by, **({"as_of": as_of} if as_of else {})}
            cli_args = ["wip", "value", "--by", by, "--json", *(["--as-of", as_of] if as_of else [])]
            answer = http.get("/wip", params=params)
            assert answer.status_code == 200, answer.text
            assert answer.json() == cli_json(api.db_url, *cli_args), (by, as_of)
        assert http.get("/wip", params={"by": "operation"}).json()["total"] == "25.71"

        for item, as_of in ((None, None), ("FG-BRACKET", "2026-11-30")):
            params = {k: v for k, v in (("item", item), ("as_of", as_of)) if v}
            cli_args = ["ledger", "onhand", *([item] if item else []), *(["--as-of", as_of] if as_of else []), "--json"]
            answer = http.get("/ledger/onhand", params=params)
            assert answer.status_code == 200, answer.text
            assert answer.json() == cli_json(api.db_url, *cli_args), (item, as_of)

        answer = http.get("/work-orders/WO-1")
        assert answer.status_code == 200, answer.text
        assert answer.json() == cli_json(api.db_url, "wo", "show", "WO-1", "--json")
        assert answer.json()["operations"][-1]["waiting"] == "3"


def test_unknown_order_and_bad_parameters_are_json_errors_naming_them(api: ApiServer) -> None:
    with api.client(api.token("accountant")) as http:
        missing = http.get("/work-orders/WO-404")
        assert missing.status_code == 404 and missing.json() == {"detail": "unknown work order WO-404"}
        bad_time = http.get("/wip", params={"as_of": "2026-11-22T08:00:00"})
        assert bad_time.status_code == 422 and "as_of" in bad_time.json()["detail"]
        assert "timezone" in bad_time.json()["detail"]
        bad_by = http.get("/wip", params={"by": "colour"})
        assert bad_by.status_code == 422 and bad_by.json()["detail"].startswith("query.by:")


def test_the_journal_export_equals_the_cli_file(api: ApiServer, tmp_path: Path) -> None:
    target = tmp_path / "journal.csv"
    cli(api.db_url, "journal", "export", "--from", "2026-11-01", "--to", "2026-11-30", str(target))
    with api.client(api.token("accountant")) as http:
        answer = http.get("/journal/export.csv", params={"from": "2026-11-01", "to": "2026-11-30"})
        entries = http.get("/journal/entries", params={"from": "2026-11-01", "to": "2026-11-30"}).json()["rows"]
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.content == target.read_bytes()
    assert len(entries) == len(answer.text.splitlines()) - 1 > 0
    assert {e["account"] for e in entries} >= {"WIP", "SCRAP-LOSS", "FG-INV"}
