"""docker/ cannot be run on the build machine (no engine), so its files are checked statically here."""

from __future__ import annotations

from pathlib import Path

import yaml

from mes_bridge.plc_config import load_configs

ROOT = Path(__file__).resolve().parents[2]


def test_dockerfile_copies_only_paths_that_exist() -> None:
    copies = [line.split()[1] for line in (ROOT / "docker" / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY ")]
    assert "pyproject.toml" in copies
    # every package pyproject.toml installs is in the image (``mes-bridge serve`` needs api/)
    assert {"mes_common", "mes_bridge", "ledger", "bom", "routing", "wip_costing", "api", "migrations"} <= set(copies)
    assert [c for c in copies if not (ROOT / c).exists()] == []


def test_compose_runs_postgres_setup_simulators_collector_and_api() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "setup", "simulators", "collector", "api"} <= set(services)
    assert services["api"]["command"][:1] == ["serve"] and "0.0.0.0" in services["api"]["command"]
    assert services["api"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert services["collector"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    for name in ("simulators", "collector"):
        mount = services[name]["volumes"][0].split(":")[0]
        assert (ROOT / "docker" / mount).is_dir()


def test_docker_machine_descriptions_are_valid_and_point_at_the_simulators_service() -> None:
    configs = load_configs(ROOT / "docker" / "plc_configs")
    shipped = load_configs(ROOT / "plc_configs")
    assert {c.machine for c in configs} == {c.machine for c in shipped}
    assert all("//simulators:" in c.endpoint for c in configs)
