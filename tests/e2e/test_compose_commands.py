"""docker/compose.yaml without Docker: every service's command, read from the compose file, run as a real process
on this host (PostgreSQL from the tests' server, container paths and service host names mapped to local ones):
the one-shot set-up twice, two API replicas, the simulators and the collector forwarding over HTTP with the
collector token the set-up made. The events reach WIP and both replicas show it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.engine import make_url

from mes_common.db import make_engine
from tests.e2e.api_server import free_port
from tests.waiting import wait_until_sync

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
IMAGE_ENTRYPOINT = ["mes-bridge"]  # the Dockerfile's ENTRYPOINT
IMAGE_ENV = {"MES_BRIDGE_DATA_DIR": "/data"}  # the Dockerfile's ENV


@pytest.fixture
def fresh_pg_url(pg_url: str) -> Iterator[str]:
    """An empty database (no schema: the set-up's migration makes it) on the tests' PostgreSQL server."""
    admin_url = make_url(pg_url).set(database="postgres")
    admin = make_engine(admin_url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    name = f"mesb_compose_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class Host:
    """Where each container path and service name of the compose file lives on this host."""

    def __init__(self, tmp: Path, db_url: str) -> None:
        self.tmp, self.db_url = tmp, db_url
        self.secrets = tmp / "secrets"
        self.secrets.mkdir()
        self.api_ports = [free_port(), free_port()]
        self.configs = tmp / "plc_configs"
        self.configs.mkdir()
        self.machine_ports: list[int] = []
        for source in sorted((DOCKER / "plc_configs").glob("*.yaml")):
            port = free_port()
            self.machine_ports.append(port)
            body = re.sub(r"//simulators:\d+", f"//127.0.0.1:{port}", source.read_text(encoding="utf-8"))
            (self.configs / source.name).write_text(body, encoding="utf-8")
        self.compose = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))

    def _map(self, word: str, replica: int) -> str:
        word = word.replace("$$", "$")
        word = word.replace("/app/docker/plc_configs", str(self.configs))
        word = word.replace("/app/docker/setup.sh", str(DOCKER / "setup.sh"))
        word = word.replace("/secrets", str(self.secrets))
        word = word.replace("http://api:8000", f"http://127.0.0.1:{self.api_ports[0]}")
        word = word.replace("--metrics-port 9108", f"--metrics-port {free_port()}")
        word = word.replace("--metrics-host 0.0.0.0", "--metrics-host 127.0.0.1")
        return "127.0.0.1" if word == "0.0.0.0" else word

    def argv(self, service: str, replica: int = 0) -> list[str]:
        spec = self.compose["services"][service]
        words = [*spec.get("entrypoint", IMAGE_ENTRYPOINT), *spec.get("command", [])]
        mapped = [self._map(w, replica) for w in words]
        if service == "api":  # each replica listens on its own host port (in containers: 8000 each)
            mapped[mapped.index("--port") + 1] = str(self.api_ports[replica])
        return mapped

    def env(self, service: str, replica: int = 0) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MES_BRIDGE_")}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
        spec = self.compose["services"][service]
        for key, value in {**IMAGE_ENV, **spec.get("environment", {})}.items():
            env[key] = self._map(str(value), replica)
        assert env["MES_BRIDGE_DATABASE_URL"].startswith("postgresql+psycopg://")
        env["MES_BRIDGE_DATABASE_URL"] = self.db_url
        data = self.tmp / f"data-{service}-{replica}"
        data.mkdir(exist_ok=True)
        env["MES_BRIDGE_DATA_DIR"] = str(data)
        return env

    def run(self, service: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(service), env=self.env(service), cwd=self.tmp, capture_output=True,
                              text=True, timeout=300, check=False)

    def start(self, service: str, replica: int = 0) -> subprocess.Popen[str]:
        log = (self.tmp / f"{service}-{replica}.log").open("w")
        return subprocess.Popen(self.argv(service, replica), env=self.env(service, replica), cwd=self.tmp,
                                stdout=log, stderr=subprocess.STDOUT, text=True)

    def log(self, service: str, replica: int = 0) -> str:
        return (self.tmp / f"{service}-{replica}.log").read_text(encoding="utf-8")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wip_of(url: str, token: str, order: str) -> Decimal:
    rows = httpx.get(f"{url}/wip", params={"by": "order"}, headers={"Authorization": f"Bearer {token}"},
                     timeout=10).json()["rows"]
    return sum((Decimal(r["value"]) for r in rows if r["work_order"] == order), Decimal(0))


@pytest.mark.e2e
@pytest.mark.postgres
def test_the_compose_files_commands_run_the_stack_outside_containers(tmp_path: Path, fresh_pg_url: str) -> None:
    host = Host(tmp_path, fresh_pg_url)
    first = host.run("setup")
    assert first.returncode == 0, first.stdout + first.stderr
    token = re.search(r"token: (\S+)", first.stdout)
    assert token is not None, first.stdout
    collector_token = (host.secrets / "collector-token").read_text().strip()
    again = host.run("setup")  # the stack restarted: the set-up is idempotent and keeps the tokens
    assert again.returncode == 0, again.stdout + again.stderr
    assert "WO-2 already released (a previous run): resuming" in again.stdout
    assert (host.secrets / "collector-token").read_text().strip() == collector_token

    procs: list[tuple[str, int, subprocess.Popen[str]]] = []
    try:
        for replica in (0, 1):
            procs.append(("api", replica, host.start("api", replica)))
        urls = [f"http://127.0.0.1:{p}" for p in host.api_ports]
        wait_until_sync(lambda: all(_answers(f"{url}/health") for url in urls), 30, "both API replicas to answer")
        procs.append(("simulators", 0, host.start("simulators")))
        procs.append(("collector", 0, host.start("collector")))

        def both_replicas_show_parts() -> bool:
            return all(_wip_of(url, token.group(1), "WO-2") > 0 for url in urls)

        wait_until_sync(both_replicas_show_parts, 40, "WO-2's WIP (collector -> HTTP -> API -> PostgreSQL) on both "
                        "replicas", interval_s=0.5)
        health: dict[str, Any] = httpx.get(f"{urls[1]}/collectors/health", timeout=10,
                                           headers={"Authorization": f"Bearer {token.group(1)}"}).json()
        assert {m["machine"] for m in health["machines"]} >= {"CNC-1"}
        for name, replica, proc in procs:
            assert proc.poll() is None, f"{name} {replica} exited early:\n{host.log(name, replica)}"
    finally:
        for _name, _replica, proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for name, replica, proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"{name} {replica} did not stop on SIGTERM:\n{host.log(name, replica)}") from None
    assert "Traceback" not in host.log("collector")
