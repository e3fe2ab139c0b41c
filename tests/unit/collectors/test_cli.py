"""``mes-bridge collect`` / ``simulate`` refuse a bad machine description with file, line and field."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mes_bridge.cli import app

BAD = """\
machine: PRESS-1
work_center: WC-PRESS
protocol: modbus
endpoint: tcp://127.0.0.1:5020
counters:
  good: {register: {address: 0, scael: "1"}}
"""


def test_collect_and_simulate_name_the_bad_field(tmp_path: Path) -> None:
    (tmp_path / "press.yaml").write_text(BAD)
    runner = CliRunner()
    for command in ("collect", "simulate"):
        result = runner.invoke(app, [command, "--config", str(tmp_path)])
        assert result.exit_code != 0
        assert f"{tmp_path / 'press.yaml'}:6: field 'counters.good.register.scael'" in result.output


def test_a_refused_description_exits_1_and_a_usage_error_2(tmp_path: Path) -> None:
    (tmp_path / "press.yaml").write_text(BAD)
    runner = CliRunner()
    assert runner.invoke(app, ["collect", "--config", str(tmp_path)]).exit_code == 1  # refused input
    usage = runner.invoke(app, ["collect", "--config", str(tmp_path), "--url", "http://central:8000"])
    assert usage.exit_code == 2 and "--url needs --token" in usage.output  # Click's usage error
    assert runner.invoke(app, ["collect", "--no-such-option"]).exit_code == 2
    unknown = runner.invoke(app, ["collect", "--config", str(tmp_path / "missing")])
    assert unknown.exit_code == 1
