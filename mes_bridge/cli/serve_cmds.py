"""``mes-bridge serve`` (the HTTP API under uvicorn) and ``mes-bridge token create|list|revoke``.

``serve`` names the app factory (``api.app:create_app``) rather than importing it: the shell starts the HTTP
adapter, it does not depend on it. Each worker process builds its own app from the settings; they share nothing
but the database. Beside them, the serving process keeps the reports' balance checkpoints built (one thread,
whatever ``--workers``; on PostgreSQL one builder per database across hosts: ``mes_bridge.checkpoint_worker``).
With ``--workers`` > 1, a directory where prometheus_client's multiprocess mode keeps each worker's metrics, so that
``/metrics`` shows the whole server (``PROMETHEUS_MULTIPROC_DIR``: the one given, emptied at start, else a
temporary one, removed at exit).
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from mes_bridge import tokens
from mes_bridge.cli.common import domain_errors, engine_from_settings, fail, services_from_settings
from mes_common.settings import LOG_FORMAT

token_app = typer.Typer(help="API tokens (stored hashed): create, list, revoke.", no_args_is_help=True)
APP_FACTORY = "api.app:create_app"
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
HIDE_TOKENS = "api.access_log.HideTokens"  # named, not imported, as the factory


def register(app: typer.Typer) -> None:
    """Add ``serve`` and the ``token`` commands to the main app."""

    @app.command("serve")
    def serve(
        host: Annotated[str, typer.Option(help="address to listen on (0.0.0.0: every interface)")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port")] = 8000,
        workers: Annotated[int, typer.Option(help="worker processes (each serves the same database)")] = 1,
        log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
        checkpoint_every: Annotated[float, typer.Option(
            envvar="MES_BRIDGE_CHECKPOINT_EVERY", min=0,
            help="seconds between builds of the reports' daily checkpoints (0: this process never builds)")] = 60.0,
    ) -> None:
        """Serve the HTTP API (OpenAPI at /docs), the terminal page and the WIP dashboard."""
        import uvicorn

        if workers < 1:
            raise fail("error: --workers must be at least 1")
        typer.echo(f"mes-bridge API on http://{host}:{port} (docs: /docs, terminal: /terminal, "
                   f"dashboard: /dashboard), {workers} worker(s)")
        logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)
        with ExitStack() as stack:
            if checkpoint_every > 0:
                from mes_bridge.checkpoint_worker import CheckpointThread

                engine = stack.enter_context(engine_from_settings())
                stack.callback(CheckpointThread(engine, checkpoint_every).start().stop)
            stack.enter_context(metrics_dir(workers))
            # An open dashboard keeps a server-sent stream open; on Ctrl-C / SIGTERM wait for it at most 5 s.
            uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, log_level=log_level,
                        proxy_headers=True, timeout_graceful_shutdown=5, log_config=log_config())

    app.add_typer(token_app, name="token")


@contextmanager
def metrics_dir(workers: int) -> Iterator[Path | None]:
    """The multiprocess metrics directory for the workers (set in the environment they inherit, before any of
    them imports prometheus_client): ``PROMETHEUS_MULTIPROC_DIR`` if given (emptied: counts of an earlier run
    must not add up), else with more than one worker a fresh temporary one (removed at exit); else None."""
    given = os.environ.get(METRICS_DIR_ENV)
    if not given and workers == 1:
        yield None
        return
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="mes-bridge-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[METRICS_DIR_ENV] = str(path)
    try:
        yield path
    finally:
        if not given:
            del os.environ[METRICS_DIR_ENV]
            shutil.rmtree(path, ignore_errors=True)


def log_config() -> dict[str, Any]:
    """uvicorn's logging, with API tokens hidden in the access log (the dashboard's stream takes ``?token=``)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["hide_tokens"] = {"()": HIDE_TOKENS}
    config["handlers"]["access"]["filters"] = ["hide_tokens"]
    return config


@token_app.command("create")
def create(
    role: Annotated[str, typer.Option("--role", help="terminal|collector|planner|accountant|admin")],
    work_center: Annotated[list[str] | None, typer.Option("--work-center", help="a terminal's work center "
                                                                              "(repeatable)")] = None,
    machine: Annotated[list[str] | None, typer.Option("--machine", help="a collector's machine (repeatable)")] = None,
    name: Annotated[str | None, typer.Option("--name", help="who or what holds it (shown in lists and moves)")] = None,
) -> None:
    """Create a token; it is printed once, alone on the last line (only its hash is stored)."""
    with domain_errors(), services_from_settings() as services, services.uow() as uow:
        secret, record = tokens.create_token(uow.conn, role, work_centers=tuple(work_center or ()),
                                             machines=tuple(machine or ()), name=name)
        uow.commit()
    bound = ", ".join(record.work_centers or record.machines)
    typer.echo(f"token {record.id} '{record.name}': {record.role.value}{f' for {bound}' if bound else ''} "
               "(shown once; keep it)")
    typer.echo(secret)


@token_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every token (never its secret): id, name, role, bindings, created, revoked."""
    import json

    with services_from_settings() as services, services.read() as conn:
        found = tokens.list_tokens(conn)
    if as_json:
        typer.echo(json.dumps({"rows": [t.to_json() for t in found]}, indent=2))
        return
    for t in found:
        state = f"revoked {t.revoked_at.isoformat()}" if t.revoked_at else "active"
        bound = ",".join(t.work_centers or t.machines) or "-"
        typer.echo(f"{t.id}\t{t.name}\t{t.role.value}\t{bound}\t{t.created_at.isoformat()}\t{state}")


@token_app.command("revoke")
def revoke(token_id: Annotated[int, typer.Argument(help="the token's id (token list)")]) -> None:
    """Revoke a token: it stops authenticating (within seconds on running servers)."""
    with domain_errors(), services_from_settings() as services, services.uow() as uow:
        record = tokens.revoke_token(uow.conn, token_id)
        uow.commit()
    assert record.revoked_at is not None
    typer.echo(f"token {record.id} '{record.name}' revoked at {record.revoked_at.isoformat()}")
