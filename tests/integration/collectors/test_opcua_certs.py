"""Certificates made by ``mes-bridge certs create`` against an asyncua server validating strictly, both ways.

The server checks the client's certificate with asyncua's own strict validation (validity, application URI, key
usage, client extended key usage, and the certificate in its trust folder). The collector runs in strict mode
too: an unknown server certificate is refused with its thumbprint in the error until ``certs trust`` adds it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mes_bridge.cli import app
from mes_bridge.security import TrustList, load_certificate, simulator_application_uri, thumbprint, write_certificate
from mes_bridge.simulators.opcua_sim import OpcUaSimulator
from tests.integration.collectors.opcua_helpers import RunningCollector, free_port, machine_config, wait_until

pytestmark = pytest.mark.integration

STRICT = {
    "policy": "Basic256Sha256",
    "mode": "SignAndEncrypt",
    "certificate": "pki/cnc-t-cert.der",
    "private_key": "pki/cnc-t-key.pem",
    "strict": True,
}


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


async def test_certs_created_by_the_cli_are_accepted_by_a_strict_server_and_strict_client(tmp_path: Path) -> None:
    plc = tmp_path / "plc"
    config = machine_config(plc, "CNC-T", free_port(), security=STRICT, counters=("good",))

    created = _cli("certs", "create", "--machine", "CNC-T", "--config", str(plc))
    client_cert = plc / "pki" / "cnc-t-cert.der"
    assert f"certificate:     {client_cert}" in created
    assert f"private key:     {plc / 'pki' / 'cnc-t-key.pem'}" in created
    assert "application URI: urn:mes-bridge:collector:CNC-T" in created
    assert f"thumbprint:      {thumbprint(load_certificate(client_cert))}" in created
    assert (plc / "pki" / "cnc-t-key.pem").stat().st_mode & 0o077 == 0

    # The vendor's server: its own certificate, and the collector's certificate in its trust folder.
    server_dir = tmp_path / "server"
    server_cert = server_dir / "server-cert.der"
    write_certificate(server_cert, server_dir / "server-key.pem", "vendor server", simulator_application_uri("CNC-T"))
    TrustList(server_dir / "trusted-clients").add(client_cert)
    sim = OpcUaSimulator([config], certificate=server_cert, private_key=server_dir / "server-key.pem",
                         trust=server_dir / "trusted-clients", strict=True)
    await sim.start(produce=False)
    try:
        (plc / "pki" / "trusted-servers").mkdir()  # strict, and nothing trusted yet
        async with RunningCollector(config) as collector:
            await wait_until(lambda: collector.client.failures >= 1, what="the unknown server refused")
            assert collector.client.connects == 0
            server_thumbprint = thumbprint(load_certificate(server_cert))
            assert f"thumbprint {server_thumbprint}" in collector.client.last_failure, collector.client.last_failure
            assert "UntrustedServerCertificate" in collector.client.last_failure
            assert server_thumbprint in (collector.session.error or "")

            trusted = _cli("certs", "trust", str(server_cert), "--machine", "CNC-T", "--config", str(plc))
            assert re.search(rf"thumbprint:\s+{server_thumbprint}", trusted)
            await collector.baseline(timeout=20)  # the trust folder is read on every handshake: no restart
            for _ in range(3):
                await sim.produce("CNC-T", "good")
            await wait_until(lambda: collector.totals() == {"good": 3}, what="3 parts over the strict channel")
            assert collector.session.error is None
    finally:
        await sim.stop()


def test_strict_needs_a_secure_policy(tmp_path: Path) -> None:
    from mes_bridge.plc_config import ConfigError

    with pytest.raises(ConfigError, match="strict needs policy Basic256Sha256"):
        machine_config(tmp_path, "CNC-U", free_port(), security={"policy": "None", "strict": True})


def test_certs_create_keeps_existing_files_unless_forced(tmp_path: Path) -> None:
    folder = tmp_path / "pki"
    _cli("certs", "create", "--dir", str(folder), "--config", str(tmp_path / "none"))
    first = (folder / "collector-cert.der").read_bytes()
    result = CliRunner().invoke(app, ["certs", "create", "--dir", str(folder), "--config", str(tmp_path / "none")])
    assert result.exit_code == 1 and "already exist" in result.output and "--force" in result.output
    assert (folder / "collector-cert.der").read_bytes() == first
    _cli("certs", "create", "--dir", str(folder), "--config", str(tmp_path / "none"), "--force")
    assert (folder / "collector-cert.der").read_bytes() != first
