"""Machine descriptions: shipped files load; bad ones are refused naming file, line and field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from mes_bridge.plc_config import ConfigError, load_configs, parse_config

SHIPPED = Path(__file__).resolve().parents[3] / "plc_configs"

GOOD = """\
machine: PRESS-9
work_center: WC-PRESS
kind: press
protocol: modbus
endpoint: tcp://127.0.0.1:5020
counters:
  good:  {register: {table: holding, address: 0, type: uint32}}
  scrap: {register: {table: holding, address: 2, type: uint16}}
energy: {register: {table: input, address: 10, type: uint32, scale: 0.01}}
simulation: {parts_per_minute: 120, scrap_ratio: 0.05}
"""


def test_shipped_configs_load_with_their_protocols() -> None:
    configs = {c.machine: c for c in load_configs(SHIPPED)}
    assert set(configs) == {"CNC-1", "PRESS-1", "VISION-1"}
    assert configs["CNC-1"].protocol == "opcua"
    assert configs["PRESS-1"].energy is not None
    assert configs["VISION-1"].event_field("fail") == "scrap"
    assert configs["VISION-1"].event_operation() == 30


def test_yaml_floats_become_the_written_decimal() -> None:
    config = parse_config(GOOD, "press.yaml")
    assert config.energy is not None and config.energy.reg is not None
    assert config.energy.reg.scale == Decimal("0.01")
    assert config.simulation.scrap_ratio == Decimal("0.05")
    assert config.counters["good"].counter_bits == 32
    assert config.counters["scrap"].counter_bits == 16


def test_misspelled_field_is_refused_with_file_line_and_field() -> None:
    text = GOOD.replace("type: uint16}", "typ: uint16}")
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "plc/press.yaml")
    assert caught.value.file == "plc/press.yaml"
    assert caught.value.line == 8
    assert caught.value.field == "counters.scrap.register.typ"
    assert "plc/press.yaml:8" in caught.value.message


def test_misspelled_top_level_field_names_its_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(GOOD + "work_ordr: WO-1\n", "p.yaml")
    assert (caught.value.line, caught.value.field) == (11, "work_ordr")


def test_wrong_addressing_for_protocol_is_refused() -> None:
    text = GOOD.replace("good:  {register: {table: holding, address: 0, type: uint32}}", 'good: {node: "ns=2;s=X"}')
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "p.yaml")
    assert caught.value.field == "counters"
    assert "modbus needs 'register'" in caught.value.message


def test_vision_counter_names_and_bad_value_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(GOOD.replace("kind: press", "kind: vision"), "v.yaml")
    assert "counter 'good' is not one of pass, fail, rework" in caught.value.message
    with pytest.raises(ConfigError) as caught:
        parse_config(GOOD.replace("address: 2", "address: -2"), "v.yaml")
    assert (caught.value.line, caught.value.field) == (8, "counters.scrap.register.address")


def test_yaml_syntax_error_and_duplicate_key_name_the_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(GOOD.replace("kind: press", "kind: [press"), "s.yaml")
    assert caught.value.line is not None and caught.value.field == "(yaml)"
    with pytest.raises(ConfigError) as caught:
        parse_config(GOOD + "kind: cnc\n", "d.yaml")
    assert (caught.value.line, caught.value.field) == (11, "kind")


def test_duplicate_machine_across_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    with pytest.raises(ConfigError) as caught:
        load_configs(tmp_path)
    assert caught.value.file.endswith("b.yaml") and caught.value.line == 1
    assert "a.yaml" in caught.value.message


def test_empty_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no \*\.yaml"):
        load_configs(tmp_path)


def test_connection_settings_default_to_a_fast_reconnect_and_are_read_from_the_file() -> None:
    default = parse_config(GOOD, "p.yaml").connection
    assert (default.reconnect_initial_ms, default.reconnect_max_ms) == (200, 1000)
    text = GOOD + "connection: {request_timeout_ms: 1500, reconnect_initial_ms: 100, reconnect_max_ms: 5000}\n"
    connection = parse_config(text, "p.yaml").connection
    assert (connection.request_timeout_ms, connection.reconnect_max_ms) == (1500, 5000)


@pytest.mark.parametrize(("setting", "field", "problem"), [
    ("{reconnect_initial_ms: 2000, reconnect_max_ms: 500}", "connection",
     "reconnect_max_ms (500) must not be below reconnect_initial_ms (2000)"),
    ("{request_timeout_ms: 0}", "connection.request_timeout_ms", "greater than 0"),
    ("{keepalive_ms: 500}", "connection.keepalive_ms", "not a known field"),
])
def test_bad_connection_settings_name_file_line_and_field(setting: str, field: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(GOOD + f"connection: {setting}\n", "plc/press.yaml")
    assert (caught.value.line, caught.value.field) == (11, field)
    assert problem in caught.value.message


OPCUA = """\
machine: CNC-9
work_center: WC-LASER
protocol: opcua
endpoint: opc.tcp://127.0.0.1:4840
counters:
  good: {good}
"""


def test_browse_paths_need_a_namespace_and_stand_alone() -> None:
    config = parse_config(OPCUA.format(good='{path: [Machines, CNC-9, "nsu=urn:other;Count"], namespace: "urn:v"}'),
                          "c.yaml")
    assert config.counters["good"].path_elements() == (("urn:v", "Machines"), ("urn:v", "CNC-9"),
                                                        ("urn:other", "Count"))
    with pytest.raises(ConfigError, match="'path' needs 'namespace'"):
        parse_config(OPCUA.format(good="{path: [Machines, Count]}"), "c.yaml")
    with pytest.raises(ConfigError, match="exactly one of 'node' or 'path'"):
        parse_config(OPCUA.format(good='{path: [Count], namespace: "urn:v", node: "ns=2;s=x"}'), "c.yaml")
