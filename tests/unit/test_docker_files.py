"""Static checks of docker/: no Docker engine runs here, so the files are read and checked against what the
project ships (the commands they run are run outside containers by tests/e2e/test_compose_commands.py)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from mes_bridge.plc_config import load_configs

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8")))


def _dockerfile_lines() -> list[str]:
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def test_dockerfile_is_multi_stage_and_runs_as_a_non_root_user() -> None:
    lines = _dockerfile_lines()
    stages = [i for i, ln in enumerate(lines) if ln.upper().startswith("FROM ")]
    assert len(stages) >= 2, "a build stage and a runtime stage"
    runtime = lines[stages[-1]:]
    assert any(ln.startswith("COPY --from=") for ln in runtime), "the runtime copies the build stage's result"
    users = [ln.split()[1] for ln in runtime if ln.upper().startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}, "the runtime stage ends as a non-root user"
    assert any("useradd" in ln and users[-1] in ln for ln in runtime)


def test_every_file_the_dockerfile_copies_exists_and_every_package_is_installed() -> None:
    for line in _dockerfile_lines():
        if line.startswith("COPY ") and "--from=" not in line:
            *sources, _target = line.split()[1:]
            for source in sources:
                assert (ROOT / source).exists(), f"Dockerfile copies {source}, which is not in the repository"
    copied = {ln.split()[1] for ln in _dockerfile_lines() if ln.startswith("COPY ") and "--from=" not in ln}
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    packages = re.search(r'include = \[(.*?)\]', pyproject)
    assert packages is not None
    for pattern in re.findall(r'"([a-z_]+)\*"', packages.group(1)):
        assert pattern in copied, f"package {pattern} is installed by pyproject.toml but not copied into the image"


def test_compose_has_postgres_with_a_health_check_and_a_one_shot_setup_before_the_api() -> None:
    services = _compose()["services"]
    postgres = services["postgres"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    setup = services["setup"]
    assert setup["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert setup["restart"] == "no"
    assert setup["entrypoint"][-1] == "/app/docker/setup.sh"
    api = services["api"]
    assert api["deploy"]["replicas"] == 2
    assert api["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert "/health" in " ".join(api["healthcheck"]["test"])
    assert api["command"][0] == "serve" and "0.0.0.0" in api["command"]


def test_the_collector_forwards_over_http_to_the_api_with_the_collector_token() -> None:
    services = _compose()["services"]
    collector = services["collector"]
    command = " ".join(collector["command"])
    assert "mes-bridge collect" in command and "--url http://api:8000" in command
    assert "/secrets/collector-token" in command
    assert collector["depends_on"]["api"]["condition"] == "service_healthy"
    assert any(v.startswith("secrets:/secrets") for v in collector["volumes"])
    assert any(v.startswith("spool:/data") for v in collector["volumes"]), "the spool survives a restart"
    setup_script = (DOCKER / "setup.sh").read_text(encoding="utf-8")
    assert "token create --role collector" in setup_script


def test_every_app_service_runs_the_image_built_here_against_postgres() -> None:
    services = _compose()["services"]
    for name in ("setup", "api", "simulators", "collector"):
        service = services[name]
        assert service["image"] == "mes-bridge:local" and service["build"]["dockerfile"] == "docker/Dockerfile", name
        assert service["environment"]["MES_BRIDGE_DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert "@postgres:5432/" in service["environment"]["MES_BRIDGE_DATABASE_URL"], name


def test_the_example_env_names_every_variable_the_compose_file_interpolates() -> None:
    compose_text = (DOCKER / "compose.yaml").read_text(encoding="utf-8")
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)", compose_text))
    example = (DOCKER / ".env.example").read_text(encoding="utf-8")
    defined = set(re.findall(r"^([A-Z_]+)=", example, re.M))
    assert used <= defined, f"not in docker/.env.example: {sorted(used - defined)}"


def test_the_docker_machine_descriptions_load_and_point_at_the_simulators_service() -> None:
    configs = load_configs(DOCKER / "plc_configs")
    assert {c.machine for c in configs} == {"CNC-1", "PRESS-1", "VISION-1"}
    for config in configs:
        assert "//simulators:" in config.endpoint, config.endpoint
        assert config.simulation is not None and config.simulation.job == "WO-2"
    shipped = {c.machine: c for c in load_configs(ROOT / "plc_configs")}
    for config in configs:  # the same machines as the shipped descriptions, only the host differs
        assert config.counters == shipped[config.machine].counters


def test_the_setup_script_is_valid_posix_shell() -> None:
    done = subprocess.run(["sh", "-n", str(DOCKER / "setup.sh")], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
