"""A real API process for the end-to-end tests: ``mes-bridge serve`` (uvicorn) on a free port, over a database URL;
started, stopped (or killed) and restarted on the same port; tokens made with ``mes-bridge token create`` and CLI
commands run against the same database."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.waiting import wait_until_sync

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli_env(db_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MES_BRIDGE_")}
    env["MES_BRIDGE_DATABASE_URL"] = db_url
    return env


def cli(db_url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``mes-bridge ARGS`` on ``db_url``."""
    done = subprocess.run([sys.executable, "-m", "mes_bridge.cli", *args], env=cli_env(db_url), cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert done.returncode == 0, f"mes-bridge {' '.join(args)} failed ({done.returncode}): {done.stderr}"
    return done


def cli_json(db_url: str, *args: str) -> Any:
    return json.loads(cli(db_url, *args).stdout)


class ApiServer:
    """``mes-bridge serve --port P [--workers N]`` over ``db_url``."""

    def __init__(self, db_url: str, *, workers: int = 1, port: int | None = None, log_level: str = "warning",
                 output: Path | None = None, env: dict[str, str] | None = None) -> None:
        """``output``: a file that takes the server's stdout and stderr (uvicorn's access log, at ``log_level``
        info); ``env``: variables added to the server's environment."""
        self.db_url = db_url
        self.workers = workers
        self.log_level = log_level
        self.output = output
        self.env = env or {}
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The ``mes-bridge serve`` process (uvicorn's supervisor when ``workers`` > 1)."""
        assert self.proc is not None, "the server is not running"
        return self.proc.pid

    def start(self, timeout_s: float = 30.0) -> ApiServer:  # float-ok: seconds
        out = self.output.open("ab") if self.output is not None else None
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mes_bridge.cli", "serve", "--port", str(self.port), "--workers",
                 str(self.workers), "--log-level", self.log_level],
                env={**cli_env(self.db_url), **self.env}, cwd=ROOT,
                stdout=out if out is not None else subprocess.DEVNULL,
                stderr=subprocess.STDOUT if out is not None else subprocess.PIPE,
            )
        finally:
            if out is not None:
                out.close()
        proc = self.proc
        output = self.output

        def healthy() -> bool:
            if proc.poll() is not None:
                err = (proc.stderr.read().decode() if proc.stderr else
                       output.read_text(errors="replace") if output is not None else "")
                raise AssertionError(f"mes-bridge serve on port {self.port} exited with {proc.returncode}: {err}")
            try:
                return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until_sync(healthy, timeout_s, f"mes-bridge serve on port {self.port} to answer /health", 0.1)
        return self

    def stop(self, *, kill: bool = False) -> None:
        if self.proc is None:
            return
        if kill:
            self.proc.kill()
        else:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def token(self, role: str, *, work_centers: tuple[str, ...] = (), machines: tuple[str, ...] = (),
              name: str | None = None) -> str:
        args = ["token", "create", "--role", role]
        for wc in work_centers:
            args += ["--work-center", wc]
        for m in machines:
            args += ["--machine", m]
        if name:
            args += ["--name", name]
        return cli(self.db_url, *args).stdout.strip().splitlines()[-1]

    def client(self, token: str | None = None, timeout: float = 30.0) -> httpx.Client:  # float-ok: seconds
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
