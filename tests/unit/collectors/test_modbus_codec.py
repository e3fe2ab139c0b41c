"""Register codec: 16/32-bit, signed and unsigned, word and byte order, exact scaling."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mes_bridge.collectors.modbus import RegisterValueError, decode_registers, encode_registers, scaled
from mes_bridge.plc_config import RegisterSpec


def spec(**kw: object) -> RegisterSpec:
    return RegisterSpec(address=0, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("kw", "raw", "words"), [
    ({"type": "uint16"}, 0x1234, [0x1234]),
    ({"type": "uint16", "byte_order": "little"}, 0x1234, [0x3412]),
    ({"type": "int16"}, -2, [0xFFFE]),
    ({"type": "uint32"}, 0x12345678, [0x1234, 0x5678]),
    ({"type": "uint32", "word_order": "little"}, 0x12345678, [0x5678, 0x1234]),
    ({"type": "uint32", "byte_order": "little"}, 0x12345678, [0x3412, 0x7856]),
    ({"type": "uint32", "word_order": "little", "byte_order": "little"}, 0x12345678, [0x7856, 0x3412]),
    ({"type": "int32"}, -70000, [0xFFFE, 0xEE90]),
])
def test_encode_and_decode_are_inverse(kw: dict[str, object], raw: int, words: list[int]) -> None:
    s = spec(**kw)
    assert encode_registers(s, raw) == words
    assert decode_registers(s, words) == raw


def test_value_that_does_not_fit_is_refused_naming_the_register() -> None:
    with pytest.raises(RegisterValueError, match="70000 does not fit uint16 register holding 0"):
        encode_registers(spec(type="uint16"), 70000)


def test_scale_is_exact_and_counters_stay_integers() -> None:
    assert scaled(spec(type="uint32", scale=Decimal("0.01")), 12345) == Decimal("123.45")
    assert scaled(spec(), 7) == 7 and isinstance(scaled(spec(), 7), int)


def test_neighbouring_registers_are_read_in_one_request() -> None:
    from mes_bridge.collectors.modbus import plan_reads
    from mes_bridge.plc_config import parse_config

    config = parse_config(
        "machine: P\nwork_center: W\nprotocol: modbus\nendpoint: tcp://127.0.0.1:5020\ncounters:\n"
        "  good: {register: {address: 0, type: uint32}}\n  scrap: {register: {address: 2, type: uint32}}\n"
        "  rework: {register: {address: 40}}\n"
        "job: {register: {address: 10}}\nenergy: {register: {table: input, address: 10, type: uint32}}\n", "p.yaml")
    plan = [(b.table, b.start, b.count, [n for n, _ in b.tags]) for b in plan_reads(config)]
    assert plan == [("holding", 0, 11, ["good", "scrap", "job"]), ("holding", 40, 1, ["rework"]),
                    ("input", 10, 2, ["energy"])]


def test_simulated_job_must_fit_a_numeric_job_register() -> None:
    from mes_bridge.plc_config import parse_config
    from mes_bridge.simulators.modbus_sim import ModbusSimulator, ModbusSimulatorError

    text = (
        "machine: P\nwork_center: W\nprotocol: modbus\nendpoint: tcp://127.0.0.1:5020\n"
        "counters:\n  good: {register: {address: 0}}\njob: {register: {address: 4}, format: 'WO-{value}'}\n"
        "simulation: {job: JOB}\n"
    )
    sim = ModbusSimulator([parse_config(text.replace("JOB", "WO-17"), "p.yaml")])
    assert sim.machine("P").raw_of("job", sim.machine("P").config.job) == 17  # type: ignore[arg-type]
    with pytest.raises(ModbusSimulatorError, match="machine P: simulation: job 'WO-X'"):
        ModbusSimulator([parse_config(text.replace("JOB", "WO-X"), "p.yaml")])
