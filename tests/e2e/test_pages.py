"""The scan terminal and the WIP dashboard in a real browser (Debian's chromium) against real uvicorn processes.

An operator scans WO-1 at the laser's terminal and reports 10 good in 25 minutes: the dashboard, open beside it and
served by another API process, shows the WIP value move from 0.00 to 73.50 (SPEC's worked example's op 10, with
the operator's 25 minutes of labor instead of the standard 20) without being reloaded. Refusals are shown with
their reasons. Screenshots of both pages at 1280x800 and at phone size land in ``tests/e2e/artifacts/``.

The tests pass in any order: each one that reports uses an order no other touches, and the dashboard's test, which
reads totals over every order, has a database of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.pages_fixtures import ARTIFACTS, Served, browser, open_page, served, served_alone
from tests.waiting import TIMEOUT_SCALE

__all__ = ["browser", "served", "served_alone"]  # fixtures, imported for pytest

pytestmark = pytest.mark.e2e

LIVE_WITHIN_MS = 1000 * TIMEOUT_SCALE  # the dashboard's promise: one second (scaled for loaded machines)


def _scan(page: Page, barcode: str) -> None:
    # A keyboard-wedge scanner types into whatever has the focus, then Enter: the scan field must have it.
    expect(page.locator("#scan-input")).to_be_focused()
    page.keyboard.type(barcode)
    page.keyboard.press("Enter")


def _shoot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_completion_at_the_terminal_moves_the_dashboard_without_a_reload(served_alone: Served,
                                                                          browser: Browser) -> None:
    served = served_alone  # the dashboard's totals cover every order: no other test's reports in its database
    dashboard = open_page(browser, f"{served.url}/dashboard", served.token("accountant", name="cost office"))
    expect(dashboard.locator("#live-text")).to_have_text("live")
    expect(dashboard.locator("#wip-total")).to_have_text("0.00")
    expect(dashboard.locator("#rejected")).to_contain_text("exceeds the 0 waiting")
    collector = served.token("collector", "--machine", "LASER-1", "--machine", "PRESS-1", name="edge-1")
    reported = httpx.post(f"{served.other_url}/collectors/health", timeout=10,
                          headers={"Authorization": f"Bearer {collector}"}, json={"machines": [
                              {"machine": "LASER-1", "connected": True, "last_value_age_s": 0.4,
                               "spool_depth": 0, "events_per_s": 0.5},
                              {"machine": "PRESS-1", "connected": False, "last_value_age_s": 95.0,
                               "spool_depth": 12, "events_per_s": 0, "error": "connection refused"}]})
    assert reported.status_code == 200, reported.text
    # Health reports do not move the journal: the page re-reads them every 5 s.
    expect(dashboard.locator("#health tr.down")).to_contain_text("PRESS-1", timeout=10_000)
    expect(dashboard.locator("#health tr.up")).to_contain_text("LASER-1")
    dashboard.evaluate("window.notReloaded = true")

    # The terminal talks to the other API process: the dashboard's stream must see changes made anywhere.
    terminal = open_page(browser, f"{served.other_url}/terminal", served.terminal_token("WC-LASER", "T-LASER-1"))
    _scan(terminal, "WO-1")
    expect(terminal.locator("#o-work-order")).to_have_text("WO-1")
    expect(terminal.locator("#o-item")).to_have_text("FG-BRACKET")
    expect(terminal.locator("#o-operation")).to_have_text("10")
    expect(terminal.locator("#o-work-center")).to_have_text("WC-LASER")
    expect(terminal.locator("#o-waiting")).to_have_text("10")
    expect(terminal.locator("#o-bom")).to_have_text("A")
    expect(terminal.locator("#o-routing")).to_have_text("A")
    expect(terminal.locator("#o-quality")).to_have_text("Cut to drawing BR-100 rev C")

    _shoot(terminal, "terminal-1280x800")
    terminal.click(".step[data-step='1']")  # a tap on a button gives the focus back to the scan field
    expect(terminal.locator("#qty")).to_have_value("2")
    expect(terminal.locator("#scan-input")).to_be_focused()
    terminal.fill("#qty", "10")
    terminal.click(".extra summary")
    terminal.fill("#minutes", "25")
    terminal.fill("#operator", "E-107")
    terminal.click("button.act.good")
    expect(terminal.locator("#outcome")).to_have_class("outcome ok")
    reported = time.monotonic()
    expect(terminal.locator("#outcome")).to_contain_text("10 good reported at operation 10 of WO-1")
    expect(terminal.locator("#scan-input")).to_be_focused()

    # Material 40.00 + labor 12.50 (25 min at 30.00/h) + machine 20.00 (standard 20 min) + standard energy 1.00,
    # now waiting at op 20.
    expect(dashboard.locator("#wip-total")).to_have_text("73.50", timeout=LIVE_WITHIN_MS)
    print(f"dashboard showed the new WIP value {time.monotonic() - reported:.2f} s after the terminal's outcome")
    assert dashboard.evaluate("window.notReloaded") is True
    expect(dashboard.locator("#chart-operation .bar-row")).to_have_count(1)
    expect(dashboard.locator("#chart-operation")).to_contain_text("WO-1 · op 20")
    expect(dashboard.locator("#chart-work-center")).to_contain_text("WC-PRESS")
    expect(dashboard.locator("#chart-provenance")).to_contain_text("scan 100.0 %")
    # As of the end of yesterday (the report is dated now): nothing was in WIP yet; then back to now.
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    dashboard.fill("#as-of", yesterday)
    expect(dashboard.locator("#wip-total")).to_have_text("0.00")
    expect(dashboard.locator("#wip-label")).to_contain_text(f"end of {yesterday}")
    dashboard.click("#as-of-now")
    expect(dashboard.locator("#wip-total")).to_have_text("73.50")

    expect(terminal.locator("#history")).to_contain_text("10 good reported at operation 10 of WO-1")
    _shoot(terminal, "terminal-1280x800-reported")
    _shoot(dashboard, "dashboard-1280x800")
    for path, token, name in (
        ("/terminal", served.terminal_token("WC-PRESS", "T-PRESS-1"), "terminal-phone"),
        ("/dashboard", served.token("planner"), "dashboard-phone"),
    ):
        phone = open_page(browser, served.url + path, token, phone=True)
        if path == "/terminal":
            _scan(phone, "WO-1")
            expect(phone.locator("#o-waiting")).to_have_text("10")
        else:
            expect(phone.locator("#wip-total")).to_have_text("73.50")
        _shoot(phone, name)
        phone.context.close()
    terminal.context.close()
    dashboard.context.close()


def test_refusals_are_shown_with_their_reasons(served: Served, browser: Browser) -> None:
    terminal = open_page(browser, f"{served.url}/terminal", served.terminal_token("WC-LASER", "T-LASER-2"))
    _scan(terminal, "WO-404")
    outcome = terminal.locator("#outcome")
    expect(outcome).to_have_class("outcome refused")
    expect(outcome).to_contain_text("'WO-404' is neither a work order nor a serial number")
    expect(terminal.locator("#order")).to_be_hidden()
    _shoot(terminal, "terminal-refused-scan")

    # WO-2 has 3 units waiting at op 10: reporting 5 is refused with what waits there, and nothing moves.
    _scan(terminal, "WO-2")
    expect(terminal.locator("#o-waiting")).to_have_text("3")
    terminal.fill("#qty", "5")
    terminal.click("button.act.good")
    expect(outcome).to_have_class("outcome refused")
    expect(outcome).to_contain_text("WO-2")
    expect(outcome).to_contain_text("3")
    _shoot(terminal, "terminal-refused-report")
    _scan(terminal, "WO-2")
    expect(terminal.locator("#o-waiting")).to_have_text("3")
    terminal.context.close()

    # At the press nothing of WO-2 waits yet: the refusal says where its units are.
    press = open_page(browser, f"{served.url}/terminal", served.terminal_token("WC-PRESS", "T-PRESS-2"))
    _scan(press, "WO-2")
    expect(press.locator("#outcome")).to_have_class("outcome refused")
    expect(press.locator("#outcome")).to_contain_text("no units are waiting at operation 20 at WC-PRESS")
    expect(press.locator("#outcome")).to_contain_text("3 at operation 10")
    press.context.close()


def test_a_bad_token_is_asked_for_again(served: Served, browser: Browser) -> None:
    terminal = open_page(browser, f"{served.url}/terminal", "not-a-token")
    _scan(terminal, "WO-1")
    expect(terminal.locator("#token-form")).to_be_visible()
    expect(terminal.locator("#token-form .hint")).to_contain_text("refused")
    # The right token, entered now, works; the page's buttons were not bound twice: one tap, one report.
    terminal.fill("#token-input", served.terminal_token("WC-LASER", "T-LASER-3"))
    terminal.click("#token-form button[type=submit]")
    _scan(terminal, "WO-4")  # its own order: WO-2's 3 waiting units are the refusal test's
    expect(terminal.locator("#o-waiting")).to_have_text("3")
    terminal.click("button.act.good")
    expect(terminal.locator("#outcome")).to_have_class("outcome ok")
    expect(terminal.locator("#o-waiting")).to_have_text("2")
    expect(terminal.locator("#history li")).to_have_count(1)
    terminal.context.close()


def test_the_stream_and_the_dashboard_json_want_a_reader_token(served: Served) -> None:
    terminal = served.terminal_token("WC-ASSY", "T-ASSY-9")
    stream = f"{served.url}/dashboard/stream"
    assert httpx.get(stream, timeout=10).status_code == 401
    assert httpx.get(stream, params={"token": "nonsense"}, timeout=10).status_code == 401
    refused = httpx.get(stream, params={"token": terminal}, timeout=10)
    assert refused.status_code == 403 and "terminal" in refused.json()["detail"]
    assert httpx.get(f"{served.url}/dashboard.json", timeout=10).status_code == 401
    assert httpx.get(f"{served.url}/dashboard.json", headers={"Authorization": f"Bearer {terminal}"},
                     timeout=10).status_code == 403
    # The pages themselves hold no data: they load without a token, and their files come only from a list.
    assert httpx.get(f"{served.url}/terminal", timeout=10).status_code == 200
    assert httpx.get(f"{served.url}/pages/static/dashboard.js", timeout=10).status_code == 200
    assert httpx.get(f"{served.url}/pages/static/..%2Fpages.py", timeout=10).status_code == 404


def test_the_stream_announces_a_change_made_through_the_other_process(served: Served) -> None:
    reader = served.token("planner")
    sender = served.token("admin")
    with httpx.stream("GET", f"{served.url}/dashboard/stream", params={"token": reader}, timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        first = _next_change(lines)
        event = {"event_id": "pages-test-rejected-1", "work_order": "WO-404", "operation": 10, "good": 1,
                 "scrap": 0, "rework": 0, "work_center": "WC-LASER", "provenance": "manual",
                 "source_time": "2026-11-22T08:00:00Z"}
        answer = httpx.post(f"{served.other_url}/events", json=[event], timeout=10,
                            headers={"Authorization": f"Bearer {sender}"})
        assert answer.status_code < 500, answer.text
        assert _next_change(lines) != first  # a stored rejection moves the marker as a journal line does


def _next_change(lines: Iterator[str]) -> str:
    """The data of the next ``change`` event (the stream's own read timeout bounds the wait)."""
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event == "change":
            return line.removeprefix("data: ")
    raise AssertionError("the stream ended without a change event")


def test_a_serial_number_scan_finds_its_order_and_reports_with_the_serial(served: Served, browser: Browser) -> None:
    terminal = open_page(browser, f"{served.url}/terminal", served.terminal_token("WC-LASER", "T-LASER-4"))
    _scan(terminal, "SN-3002")
    expect(terminal.locator("#o-work-order")).to_have_text("WO-3")
    expect(terminal.locator("#o-serial")).to_have_text("SN-3002")
    expect(terminal.locator("#o-waiting")).to_have_text("2")
    terminal.click("#qty-all")
    expect(terminal.locator("#qty")).to_have_value("2")
    terminal.fill("#qty", "1")
    terminal.click("button.act.good")
    expect(terminal.locator("#outcome")).to_contain_text("1 good reported at operation 10 of WO-3")
    expect(terminal.locator("#o-waiting")).to_have_text("1")
    terminal.context.close()
