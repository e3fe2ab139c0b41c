"""`mes-bridge demo` on a fresh machine: embedded SQLite, no server; a second run resumes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _demo(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MES_BRIDGE_")}
    return subprocess.run(
        [sys.executable, "-m", "mes_bridge.cli", "demo", *args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=240, check=False,
    )


@pytest.mark.e2e
def test_demo_runs_the_worked_example_on_embedded_sqlite_twice(tmp_path: Path) -> None:
    first = _demo(tmp_path, "--no-live")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / ".mes-bridge" / "mes-bridge.db").exists()
    out = first.stdout
    assert "standard cost of FG-BRACKET: 10.68 per unit" in out
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
def test_live_demo_stops_cleanly_on_ctrl_c_and_a_second_run_resumes(tmp_path: Path) -> None:
    import re
    import signal
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith("MES_BRIDGE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mes_bridge.cli", "demo"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    applied = 0
    # Wait until the machines' parts have gone through the event path into WIP.
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(r"\| applied (\d+)", line)
        if found and int(found.group(1)) >= 3:
            applied = int(found.group(1))
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert applied >= 3, "".join(lines) + err
    assert proc.returncode == 0, err
    assert "stopped cleanly" in out
    live = [ln for ln in lines if ln.lstrip().startswith("t+")]
    first_wip = re.search(r"WIP ([0-9.]+)", live[0])
    last_wip = re.search(r"WIP ([0-9.]+)", live[-1])
    assert first_wip and last_wip and last_wip.group(1) != "25.71"  # WO-2's parts added value to WIP

    second = _demo(tmp_path, "--duration", "6")
    assert second.returncode == 0, second.stderr
    assert "WO-2 already released (a previous run): resuming" in second.stdout
    assert second.stdout.count("-> duplicate") == 3
