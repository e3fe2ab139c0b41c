"""What the edge tests share: the CLI on a database, and the state that a refused command must leave alone."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from mes_bridge.cli import app

runner = CliRunner()


def cli(db_url: str, *args: str) -> tuple[int, str, str]:
    """Run ``mes-bridge ARGS`` on ``db_url``: exit code, stdout, stderr."""
    result = runner.invoke(app, list(args), env={"MES_BRIDGE_DATABASE_URL": db_url})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"mes-bridge {' '.join(args)} raised {result.exception!r}") from result.exception
    return result.exit_code, result.stdout, result.stderr


def ledger_state(db_url: str) -> dict[str, Any]:
    """What ``ledger check``, ``ledger onhand --json`` and ``wip value --json`` say now."""
    state: dict[str, Any] = {}
    for name, args in (("check", ("ledger", "check")), ("onhand", ("ledger", "onhand", "--json")),
                       ("wip", ("wip", "value", "--json"))):
        code, out, err = cli(db_url, *args)
        state[name] = (code, out, err)
    assert state["check"][0] == 0, state["check"]
    return state
