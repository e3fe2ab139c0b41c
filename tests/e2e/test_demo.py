"""`mes-bridge demo` on a fresh machine: embedded SQLite, no server; the live part serves the API and its pages,
the simulated machines' parts reach WIP, Ctrl-C stops everything; a second run resumes."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from mes_bridge.demo_live import SHIPPED_CONFIGS
from tests.waiting import wait_until_sync


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MES_BRIDGE_")}


def _demo(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mes_bridge.cli", "demo", *args],
        cwd=workdir, env=_env(), capture_output=True, text=True, timeout=240, check=False,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _distinct_free_ports(count: int) -> list[int]:
    """``count`` free ports, all different: each socket stays bound until all are chosen (one bound and closed at a
    time, the system may hand out the same port twice, and a machine would then find its port taken by the API)."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def _configs_on_free_ports(folder: Path, ports: list[int]) -> Path:
    """The shipped machine descriptions with every endpoint on one of ``ports`` (other tests may hold 4840/502x)."""
    folder.mkdir()
    for source, port in zip(sorted(SHIPPED_CONFIGS.glob("*.yaml")), ports, strict=False):
        text = re.sub(r"(endpoint: \w+(?:\.\w+)?://127\.0\.0\.1:)\d+", rf"\g<1>{port}", source.read_text())
        (folder / source.name).write_text(text)
    return folder


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class _Output:
    """The demo's stdout, read line by line in a thread (so waiting never blocks on a pipe)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line)

    def find(self, pattern: str) -> re.Match[str] | None:
        for line in list(self.lines):
            if found := re.search(pattern, line):
                return found
        return None

    def text(self) -> str:
        self._thread.join(timeout=10)
        return "".join(self.lines)


@pytest.mark.e2e
def test_demo_runs_the_worked_example_on_embedded_sqlite_twice(tmp_path: Path) -> None:
    first = _demo(tmp_path, "--no-live")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / ".mes-bridge" / "mes-bridge.db").exists()
    out = first.stdout
    assert "standard cost of FG-BRACKET: 10.68 per unit" in out
    assert "standard cost of FG-HINGE: 6.83 per unit" in out
    assert "BOM: released SA-LEAF rev A, FG-HINGE rev A" in out
    assert "WIP 71.10 | scrap loss 0.00 | FG-BRACKET 0" in out
    assert "WIP 68.56 | scrap loss 17.14 | FG-BRACKET 0" in out
    assert "WIP 25.71 | scrap loss 17.14 | FG-BRACKET 5 worth 53.95" in out
    assert out.count("-> applied") == 3

    second = _demo(tmp_path, "--no-live")
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("-> duplicate") == 3
    assert "-> applied" not in second.stdout
    # The figures did not move: the re-run recognised everything it had already done.
    assert second.stdout.count("WIP 25.71 | scrap loss 17.14 | FG-BRACKET 5 worth 53.95") == 3
    stock_after = second.stdout.split("On-hand stock after the example:")[1]
    assert "RM-STEEL    STORES                90      360.00" in stock_after
    assert "RM-BOLT     STORES               480       48.00" in stock_after


@pytest.mark.e2e
def test_live_demo_serves_the_api_and_pages_fills_wip_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port, *machine_ports = _distinct_free_ports(1 + len(list(SHIPPED_CONFIGS.glob("*.yaml"))))
    config = _configs_on_free_ports(tmp_path / "machines", machine_ports)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mes_bridge.cli", "demo", "--port", str(port), "--config", str(config)],
        cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    out = _Output(proc)
    try:
        wait_until_sync(lambda: out.find(r"^token: (\S+)") is not None or proc.poll() is not None, 20,
                        "the demo to print its admin token")
        token = out.find(r"^token: (\S+)")
        assert token is not None, out.text()
        assert out.find(rf"http://127\.0\.0\.1:{port}/terminal") and out.find(r"/dashboard$") and out.find(r"/docs$")
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10,
                              headers={"Authorization": f"Bearer {token.group(1)}"})

        def live_order() -> tuple[Decimal, Decimal]:
            try:
                order = client.get("/work-orders/WO-2").json()
                wip = client.get("/wip", params={"by": "order"}).json()
            except httpx.TransportError as exc:  # the demo stopped? say why, with what it printed
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
                state = "still running" if proc.returncode is None else f"exit code {proc.returncode}"
                raise AssertionError(f"{exc!r}; the demo is {state}; its output:\n{out.text()}") from exc
            good = sum((Decimal(o["completed_good"]) for o in order["operations"]), Decimal(0))
            value = sum((Decimal(r["value"]) for r in wip["rows"] if r["work_order"] == "WO-2"), Decimal(0))
            return good, value

        wait_until_sync(lambda: all(v > 0 for v in live_order()), 20,
                        "the simulated machines' parts to reach WO-2's WIP through the API", interval_s=0.5)
        page = client.get("/terminal")
        assert page.status_code == 200 and "<html" in page.text.lower()
        # The worked example's figures stay where the README quotes them: the live order has its own product.
        wo1 = [r for r in client.get("/wip", params={"by": "order"}).json()["rows"] if r["work_order"] == "WO-1"]
        assert wo1 and wo1[0]["value"] == "25.71"
        client.close()
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=60)
    stderr = proc.stderr.read() if proc.stderr else ""
    assert code == 0, out.text() + stderr
    assert "stopped cleanly" in out.text()
    assert "Traceback" not in stderr and "rror" not in out.text(), stderr
    # Nothing left behind: the API's and every simulator's port are closed with the process.
    assert not [p for p in (port, *machine_ports) if _listening(p)]

    second = _demo(tmp_path, "--duration", "3", "--port", str(_free_port()), "--config", str(config))
    assert second.returncode == 0, second.stderr
    assert "WO-2 already released (a previous run): resuming" in second.stdout
    assert second.stdout.count("-> duplicate") == 3
    assert re.search(r"^token: ", second.stdout, re.M)
