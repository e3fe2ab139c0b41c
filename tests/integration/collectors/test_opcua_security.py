"""OPC UA security: Basic256Sha256 Sign / SignAndEncrypt with generated certificates, trust lists, username login.

One simulated machine offers only Basic256Sha256 SignAndEncrypt and requires a username login; its trust list holds
the collector's certificate. A collector with the right certificate and password collects; a wrong password, an
untrusted certificate or no security at all are refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from mes_bridge.plc_config import MachineConfig
from mes_bridge.security import (
    COLLECTOR_APPLICATION_URI,
    TrustList,
    application_uri_of,
    ensure_demo_certificates,
    write_certificate,
)
from mes_bridge.simulators.opcua_sim import OpcUaSimulator
from tests.integration.collectors.opcua_helpers import RunningCollector, free_port, machine_config, wait_until

pytestmark = pytest.mark.integration
secure_plant = pytest.mark.asyncio(loop_scope="module")

PASSWORD_ENV = "MES_BRIDGE_TEST_OPCUA_PASSWORD"
SECURE = {
    "policy": "Basic256Sha256",
    "mode": "SignAndEncrypt",
    "certificate": "certs/client-cert.der",
    "private_key": "certs/client-key.pem",
    "server_certificate": "certs/server-cert.der",
    "username": "operator",
    "password_env": PASSWORD_ENV,
}


class SecureMachine:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.certs = ensure_demo_certificates(folder / "certs")
        self.sim_port = free_port()
        self.config = machine_config(folder, "CNC-S", self.sim_port, security=SECURE, counters=("good",))
        self.sim = OpcUaSimulator([self.config], users={"operator": "s3cret-Pa55"})


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secure(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SecureMachine]:
    machine = SecureMachine(tmp_path_factory.mktemp("secure"))
    await machine.sim.start(produce=False)
    yield machine
    await machine.sim.stop()


def test_generated_certificates_carry_the_application_uri_and_trust_each_other(tmp_path: Path) -> None:
    certs = ensure_demo_certificates(tmp_path)
    assert application_uri_of(certs.client.certificate) == COLLECTOR_APPLICATION_URI
    server_cert = x509.load_der_x509_certificate(certs.server.certificate.read_bytes())
    client_cert = x509.load_der_x509_certificate(certs.client.certificate.read_bytes())
    public_key = server_cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 2048
    assert TrustList(certs.client_trust).is_trusted(server_cert)
    assert TrustList(certs.server_trust).is_trusted(client_cert)
    assert not TrustList(certs.server_trust).is_trusted(server_cert)  # trusting one peer is not trusting all
    assert certs.client.private_key.stat().st_mode & 0o077 == 0
    again = ensure_demo_certificates(tmp_path)  # kept, not regenerated
    assert again.client.certificate.read_bytes() == certs.client.certificate.read_bytes()


@secure_plant
async def test_sign_and_encrypt_with_username_collects(secure: SecureMachine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-Pa55")
    async with RunningCollector(secure.config) as collector:
        await collector.baseline()
        for outcome in ("good",) * 5:
            await secure.sim.produce("CNC-S", outcome)
        await wait_until(lambda: collector.totals() == {"good": 5}, what="5 parts over an encrypted channel")
        assert collector.client.connects == 1


@secure_plant
async def test_wrong_password_is_refused(secure: SecureMachine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "guess")
    async with RunningCollector(secure.config) as collector:
        await wait_until(lambda: collector.client.failures >= 2, what="refused login attempts")
        assert collector.client.connects == 0 and collector.session.state is None
        assert "BadUserAccessDenied" in collector.client.last_failure


@secure_plant
async def test_untrusted_client_certificate_is_refused(
    secure: SecureMachine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "s3cret-Pa55")
    # A certificate the server's trust list does not hold, for the same application URI.
    write_certificate(
        tmp_path / "certs" / "client-cert.der",
        tmp_path / "certs" / "client-key.pem",
        "intruder",
        COLLECTOR_APPLICATION_URI,
        server=False,
    )
    (tmp_path / "certs" / "server-cert.der").write_bytes(secure.certs.server.certificate.read_bytes())
    intruder = machine_config(tmp_path, "CNC-S", secure.sim_port, security=SECURE, counters=("good",))
    async with RunningCollector(intruder) as collector:
        await wait_until(lambda: collector.client.failures >= 2, what="refused connection attempts")
        assert collector.client.connects == 0
        assert "BadCertificateUntrusted" in collector.client.last_failure, collector.client.last_failure


@secure_plant
async def test_no_security_is_refused_by_a_secure_endpoint(secure: SecureMachine, tmp_path: Path) -> None:
    plain = machine_config(tmp_path, "CNC-S", secure.sim_port, counters=("good",))
    async with RunningCollector(plain) as collector:
        await wait_until(lambda: collector.client.failures >= 2, what="refused connection attempts")
        assert collector.client.connects == 0
        assert "No matching endpoints" in collector.client.last_failure, collector.client.last_failure


async def test_sign_only_with_discovered_server_certificate(tmp_path: Path) -> None:
    ensure_demo_certificates(tmp_path / "certs")
    security = {
        "policy": "Basic256Sha256",
        "mode": "Sign",
        "certificate": "certs/client-cert.der",
        "private_key": "certs/client-key.pem",
    }
    config: MachineConfig = machine_config(tmp_path, "CNC-G", free_port(), security=security, counters=("good",))
    sim = OpcUaSimulator([config])
    await sim.start(produce=False)
    try:
        async with RunningCollector(config) as collector:
            await collector.baseline()
            for _ in range(3):
                await sim.produce("CNC-G", "good")
            await wait_until(lambda: collector.totals() == {"good": 3}, what="3 parts over a signed channel")
    finally:
        await sim.stop()
