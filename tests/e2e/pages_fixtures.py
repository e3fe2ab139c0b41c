"""Fixtures for the pages' browser tests: SPEC's example plant in an SQLite file, the API under two real uvicorn
processes on free ports (one database), tokens made by ``mes-bridge token create``, and Debian's chromium driven
by Playwright (no browser download).

Imported by ``test_pages*.py``, not a conftest, so that it never clashes with the API tests' fixtures in the same
folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from mes_bridge import schema
from mes_bridge.bootstrap import Services
from mes_bridge.demo import RELEASE_DATE, load_plant
from mes_common.db import make_engine
from tests.waiting import TIMEOUT_SCALE, wait_until_sync
from wip_costing.commands import ApplyEvents, ReleaseOrder

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PANEL = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
IN_CI = os.environ.get("CI", "").lower() == "true"


@dataclass(frozen=True)
class Served:
    url: str
    other_url: str  # a second API process on the same database
    db_url: str

    def token(self, role: str, *bindings: str, name: str | None = None) -> str:
        """A new token from the command line (``--work-center X`` / ``--machine M`` pairs in ``bindings``)."""
        args = [sys.executable, "-m", "mes_bridge.cli", "token", "create", "--role", role, *bindings]
        if name:
            args += ["--name", name]
        done = subprocess.run(args, env=_env(self.db_url), capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"mes-bridge token create failed: {done.stderr}"
        return done.stdout.strip().splitlines()[-1]

    def terminal_token(self, work_center: str, name: str) -> str:
        return self.token("terminal", "--work-center", work_center, name=name)


def _env(db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MES_BRIDGE_")}
    env["MES_BRIDGE_DATABASE_URL"] = db_url
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(db_url: str) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--timeout-graceful-shutdown", "3"],
        env=_env(db_url), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    return proc, f"http://127.0.0.1:{port}"


def _healthy(proc: subprocess.Popen[str], url: str) -> bool:
    if proc.poll() is not None:
        pytest.fail(f"uvicorn at {url} exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


@contextmanager
def _serving(folder: Path) -> Iterator[Served]:
    """The example plant with WO-1 (10 FG-BRACKET), WO-2 (3), WO-3 (2, serials SN-3001 and SN-3002) and WO-4 (3)
    released and one rejected event, served by two uvicorn processes."""
    db_url = f"sqlite+pysqlite:///{folder / 'plant.db'}"
    engine = make_engine(db_url)
    schema.upgrade(engine)
    services = Services(engine)
    load_plant(services, lambda _line: None)
    services.handle(ReleaseOrder("WO-1", "FG-BRACKET", Decimal(10), on=RELEASE_DATE))
    services.handle(ReleaseOrder("WO-2", "FG-BRACKET", Decimal(3), on=RELEASE_DATE))
    services.handle(ReleaseOrder("WO-3", "FG-BRACKET", Decimal(2), on=RELEASE_DATE, serials=("SN-3001", "SN-3002")))
    services.handle(ReleaseOrder("WO-4", "FG-BRACKET", Decimal(3), on=RELEASE_DATE))
    # The press counted parts before anything reached it: refused, and listed on the dashboard with the reason.
    services.handle(ApplyEvents([{"event_id": "PRESS-1:parts:0:4", "work_order": "WO-1", "operation": 20, "good": 4,
                                  "scrap": 0, "rework": 0, "machine": "PRESS-1", "work_center": "WC-PRESS",
                                  "provenance": "sensor", "source_time": "2026-11-22T07:00:00Z"}]))
    services.close()
    servers = [_start(db_url), _start(db_url)]
    try:
        for proc, url in servers:
            wait_until_sync(partial(_healthy, proc, url), timeout_s=20, what=f"uvicorn answering {url}/health",
                            interval_s=0.1)
        yield Served(servers[0][1], servers[1][1], db_url)
    finally:
        for proc, _url in servers:
            _stop(proc)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``_serving``, shared by a module's tests: each test that reports uses an order no other test touches."""
    with _serving(tmp_path_factory.mktemp("pages")) as it:
        yield it


@pytest.fixture
def served_alone(tmp_path: Path) -> Iterator[Served]:
    """``_serving`` for one test only: for a test that reads totals over every order (the dashboard's)."""
    with _serving(tmp_path) as it:
        yield it


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless; skipped (failed in CI) when it is not installed."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does it)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=5_000 * TIMEOUT_SCALE)  # a ceiling for conditions, scaled like every test wait
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_page(browser: Browser, url: str, token: str, *, phone: bool = False) -> Page:
    """A fresh browser context (its own localStorage) at ``url``, the token entered once in the page's form."""
    context = browser.new_context(viewport=PHONE if phone else PANEL, is_mobile=phone, has_touch=phone)
    page = context.new_page()
    page.goto(url)
    page.fill("#token-input", token)
    page.click("#token-form button[type=submit]")
    expect(page.locator("#main")).to_be_visible()
    return page
