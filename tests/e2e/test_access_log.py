"""The dashboard's stream takes its token as ``?token=`` (EventSource cannot send headers): a real ``mes-bridge
serve`` at log level info writes the request to its access log with ``token=***``, never the token itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.api_server import ApiServer
from tests.waiting import wait_until_sync

pytestmark = [pytest.mark.e2e]


def test_stream_token_stays_out_of_the_access_log(plant_url: str, tmp_path: Path) -> None:
    output = tmp_path / "server.log"
    server = ApiServer(plant_url, log_level="info", output=output).start()
    try:
        token = server.token("accountant")
        with server.client() as http, http.stream("GET", f"/dashboard/stream?token={token}") as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("event:")) == "event: change"
        with server.client() as http:  # and a refused one: the unknown token is not written either
            assert http.get("/dashboard/stream", params={"token": "mesb_not-a-token"}).status_code == 401
        wait_until_sync(lambda: output.read_text().count("GET /dashboard/stream?token=*** HTTP/1.1") == 2, 10,
                        "both stream requests in the access log")
    finally:
        server.stop()
    logged = output.read_text()
    assert token not in logged and "mesb_not-a-token" not in logged, logged
