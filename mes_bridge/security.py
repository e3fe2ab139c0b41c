"""OPC UA application certificates and trust lists for the collectors, the simulators, the demo and the tests.

Owns: generating a self-signed application instance certificate (RSA 2048, SHA-256, DER) with its private key (PEM),
reading the application URI a certificate was issued for, and the trust list both ends check the peer against.

Invariants:
- A certificate carries the application URI (SubjectAltName URI) the application announces; OPC UA peers reject a
  mismatch, so clients and servers take their URI from their own certificate (``application_uri_of``).
- A trust list is a folder of DER/PEM certificates; a peer is trusted only when its exact certificate (SHA-256 of the
  DER bytes) is in that folder and is within its validity period. Nothing is trusted implicitly.
- Private keys are written readable by the owner only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mes_common.errors import DomainError

COLLECTOR_APPLICATION_URI = "urn:mes-bridge:collector"


def collector_application_uri(machine: str | None = None) -> str:
    """The application URI of the collector as a whole, or of its client for one machine."""
    return f"{COLLECTOR_APPLICATION_URI}:{machine}" if machine else COLLECTOR_APPLICATION_URI


def simulator_application_uri(machine: str) -> str:
    """The application URI of the simulated OPC UA server of one machine."""
    return f"urn:mes-bridge:simulator:{machine}"


class CertificateError(DomainError):
    """A certificate or key file that cannot be used: names the file and the problem."""

    code = "bad_certificate"


@dataclass(frozen=True, slots=True)
class CertificatePair:
    certificate: Path  # DER
    private_key: Path  # PEM, unencrypted, mode 0600
    application_uri: str


def generate_certificate(
    common_name: str,
    application_uri: str,
    *,
    hostnames: Iterable[str] = ("localhost",),
    ip_addresses: Iterable[str] = ("127.0.0.1",),
    days: int = 365,
    key_size: int = 2048,
    client: bool = True,
    server: bool = True,
) -> tuple[bytes, bytes]:
    """A self-signed OPC UA application instance certificate: returns (DER certificate, PEM private key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mes-bridge"),
        ]
    )
    alt_names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    hosts = list(dict.fromkeys([*hostnames, socket.gethostname()]))
    alt_names += [x509.DNSName(host) for host in hosts]
    alt_names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    usages = [
        oid
        for oid, wanted in ((ExtendedKeyUsageOID.CLIENT_AUTH, client), (ExtendedKeyUsageOID.SERVER_AUTH, server))
        if wanted
    ]
    # Backdated a little: a peer whose clock runs slightly behind must not see "not yet valid".
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    der = certificate.public_bytes(serialization.Encoding.DER)
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return der, pem_key


def write_certificate(
    certificate_path: Path, key_path: Path, common_name: str, application_uri: str, **options: Any
) -> CertificatePair:
    """Generate a certificate and write it (DER) and its key (PEM, owner-only) to the given paths."""
    der, pem_key = generate_certificate(common_name, application_uri, **options)
    certificate_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    certificate_path.write_bytes(der)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem_key)
    return CertificatePair(certificate_path, key_path, application_uri)


def load_certificate(path: Path) -> x509.Certificate:
    """A certificate from a DER or PEM file; ``CertificateError`` names the file when it is missing or unreadable."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertificateError(f"certificate {path}: cannot be read ({exc.strerror})") from None
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise CertificateError(f"certificate {path}: not a DER or PEM X.509 certificate ({exc})") from None


def application_uri_of(certificate: x509.Certificate | Path) -> str:
    """The application URI a certificate was issued for (its first SubjectAltName URI)."""
    cert = load_certificate(certificate) if isinstance(certificate, Path) else certificate
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise CertificateError(f"certificate {cert.subject.rfc4514_string()}: has no SubjectAltName") from None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    if not uris:
        raise CertificateError(f"certificate {cert.subject.rfc4514_string()}: has no application URI") from None
    return uris[0]


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER bytes, hex."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def thumbprint(certificate: x509.Certificate) -> str:
    """The OPC UA thumbprint: SHA-1 of the DER bytes, upper-case hex (what UA servers show and name files by)."""
    return hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).hexdigest().upper()


def describe(certificate: x509.Certificate) -> str:
    """Subject, application URI, validity and thumbprint of a certificate, for messages a person acts on."""
    try:
        uri = application_uri_of(certificate)
    except CertificateError:
        uri = "(no application URI)"
    return (f"{certificate.subject.rfc4514_string()}, {uri}, valid {certificate.not_valid_before_utc:%Y-%m-%d} to "
            f"{certificate.not_valid_after_utc:%Y-%m-%d}, thumbprint {thumbprint(certificate)}")


class UntrustedServerCertificate(DomainError):
    """A server presented a certificate the collector's trust list does not hold (strict mode): names it."""

    code = "untrusted_server_certificate"


class TrustList:
    """The certificates an application accepts from its peers: a folder of DER/PEM files, pinned by fingerprint.

    Callable as an asyncua certificate validator (``server.set_certificate_validator(trust_list)``,
    ``client.certificate_validator = trust_list``): raises ``ServiceError(BadCertificateUntrusted)`` for a
    certificate not in the folder and ``BadCertificateTimeInvalid`` outside its validity period.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)

    def add(self, certificate: Path | x509.Certificate, name: str | None = None) -> Path:
        """Trust a certificate: copies it (DER) into the folder."""
        cert = load_certificate(certificate) if isinstance(certificate, Path) else certificate
        target = self.directory / f"{name or fingerprint(cert)[:16]}.der"
        target.write_bytes(cert.public_bytes(serialization.Encoding.DER))
        return target

    def fingerprints(self) -> set[str]:
        found = set()
        for path in sorted(self.directory.iterdir()):
            if path.suffix.lower() in (".der", ".pem", ".crt") and path.is_file():
                found.add(fingerprint(load_certificate(path)))
        return found

    def is_trusted(self, certificate: x509.Certificate) -> bool:
        now = dt.datetime.now(dt.UTC)
        in_period = certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc
        return in_period and fingerprint(certificate) in self.fingerprints()

    async def __call__(self, certificate: x509.Certificate, app_description: Any) -> None:
        from asyncua import ua
        from asyncua.common.utils import ServiceError

        now = dt.datetime.now(dt.UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise ServiceError(ua.StatusCodes.BadCertificateTimeInvalid)
        # The folder is re-read on every handshake so trusting or removing a peer needs no restart.
        if fingerprint(certificate) not in self.fingerprints():
            raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)


class ServerTrust(TrustList):
    """The collector's check of OPC UA servers: like ``TrustList``, but a refusal is an
    ``UntrustedServerCertificate`` naming the certificate's thumbprint and how to trust it (asyncua would reduce a
    ``ServiceError`` to a bare status code)."""

    async def __call__(self, certificate: x509.Certificate, app_description: Any) -> None:
        now = dt.datetime.now(dt.UTC)
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            raise UntrustedServerCertificate(f"server certificate {describe(certificate)} is outside its validity")
        if fingerprint(certificate) not in self.fingerprints():
            raise UntrustedServerCertificate(
                f"server certificate {describe(certificate)} is not in the trust list {self.directory}; if it is the "
                f"server you mean, trust it with: mes-bridge certs trust SERVER-CERT-FILE"
            )


@dataclass(frozen=True, slots=True)
class CreatedCertificate:
    pair: CertificatePair
    certificate: x509.Certificate


def create_client_certificate(certificate_path: Path, key_path: Path, machine: str | None, *, days: int = 730,
                              hostnames: Iterable[str] = ("localhost",), uri: str | None = None,
                              overwrite: bool = False) -> CreatedCertificate:
    """A collector's OPC UA client certificate (self-signed, RSA 2048, SHA-256) and key, written to the paths.

    SubjectAltName: the application URI (the client announces the same one) and this host's names; key usage:
    digital signature, non-repudiation, key and data encipherment (what OPC UA servers check); extended key usage:
    client authentication. Existing files are kept unless ``overwrite``: a server may already trust them.
    """
    if days <= 0:
        raise CertificateError(f"validity must be at least one day, got {days}")
    existing = [str(path) for path in (certificate_path, key_path) if path.exists()]
    if existing and not overwrite:
        raise CertificateError(f"{' and '.join(existing)} already exist (servers may trust them); "
                               "give --force to replace them")
    name = f"mes-bridge collector {machine}" if machine else "mes-bridge collector"
    pair = write_certificate(certificate_path, key_path, name, uri or collector_application_uri(machine),
                             hostnames=hostnames, days=days, server=False)
    return CreatedCertificate(pair, load_certificate(certificate_path))


@dataclass(frozen=True, slots=True)
class DemoCertificates:
    client: CertificatePair
    server: CertificatePair
    client_trust: Path  # the servers the collector trusts
    server_trust: Path  # the collectors the simulators trust


def ensure_demo_certificates(directory: Path, *, server_name: str = "simulator") -> DemoCertificates:
    """Certificates for a collector and the simulated servers, each trusting the other; kept if already present.

    Layout: ``client-cert.der``, ``client-key.pem``, ``server-cert.der``, ``server-key.pem``, ``trusted-servers/``,
    ``trusted-clients/`` (the file names the shipped ``plc_configs`` refer to).
    """
    directory.mkdir(parents=True, exist_ok=True)
    client_cert, client_key = directory / "client-cert.der", directory / "client-key.pem"
    server_cert, server_key = directory / "server-cert.der", directory / "server-key.pem"
    server_uri = simulator_application_uri(server_name)
    if not (client_cert.exists() and client_key.exists()):
        write_certificate(client_cert, client_key, "mes-bridge collector", COLLECTOR_APPLICATION_URI, server=False)
    if not (server_cert.exists() and server_key.exists()):
        write_certificate(server_cert, server_key, f"mes-bridge {server_name}", server_uri)
    client_trust = TrustList(directory / "trusted-servers")
    server_trust = TrustList(directory / "trusted-clients")
    client_trust.add(server_cert, "server")
    server_trust.add(client_cert, "client")
    return DemoCertificates(
        client=CertificatePair(client_cert, client_key, application_uri_of(client_cert)),
        server=CertificatePair(server_cert, server_key, application_uri_of(server_cert)),
        client_trust=client_trust.directory,
        server_trust=server_trust.directory,
    )
