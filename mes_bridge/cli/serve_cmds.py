"""``mes-bridge serve`` (the HTTP API under uvicorn) and ``mes-bridge token create|list|revoke``.

``serve`` names the app factory (``api.app:create_app``) rather than importing it: the shell starts the HTTP
adapter, it does not depend on it. Each worker process builds its own app from the settings; they share nothing
but the database. Beside them, the serving process keeps the reports' balance checkpoints built (one thread,
whatever ``--workers``; on PostgreSQL one builder per database across hosts: ``mes_bridge.checkpoint_worker``).
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import Annotated

import typer

from mes_bridge import tokens
from mes_bridge.cli.common import domain_errors, engine_from_settings, fail, services_from_settings

token_app = typer.Typer(help="API tokens (stored hashed): create, list, revoke.", no_args_is_help=True)
APP_FACTORY = "api.app:create_app"


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
        logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        with ExitStack() as stack:
            if checkpoint_every > 0:
                from mes_bridge.checkpoint_worker import CheckpointThread

                engine = stack.enter_context(engine_from_settings())
                stack.callback(CheckpointThread(engine, checkpoint_every).start().stop)
            # An open dashboard keeps a server-sent stream open; on Ctrl-C / SIGTERM wait for it at most 5 s.
            uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, workers=workers, log_level=log_level,
                        proxy_headers=True, timeout_graceful_shutdown=5)

    app.add_typer(token_app, name="token")


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
