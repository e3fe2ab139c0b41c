"""``mes-bridge certs``: the collector's OPC UA client certificates and the servers it trusts.

``certs create`` writes a client certificate and key for one machine (to the paths its machine file names under
``security:``, when it names them) or for the collector as a whole, and prints the paths, the application URI and
the thumbprint (the server's administrator trusts that certificate). ``certs trust FILE`` puts a server's
certificate into the trust folder a machine in strict mode checks servers against.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mes_bridge.cli.common import domain_errors

app = typer.Typer(help="OPC UA certificates: the collector's own, and the servers it trusts.", no_args_is_help=True)

ConfigDir = Annotated[Path, typer.Option("--config", help="folder of machine descriptions (*.yaml)")]
MachineOpt = Annotated[str | None, typer.Option("--machine", help="for this machine (default: the collector)")]
DirOpt = Annotated[Path, typer.Option("--dir", help="where files go when the machine file names no paths")]


def _machine_paths(config_dir: Path, machine: str) -> tuple[Path | None, Path | None, Path | None]:
    """The certificate, key and trust folder a machine's file names (None where it names nothing)."""
    from mes_bridge.collectors.opcua_setup import config_path, trust_folder
    from mes_bridge.plc_config import ConfigError, load_configs

    configs = {c.machine: c for c in load_configs(config_dir)}
    if machine not in configs:
        raise ConfigError(config_dir, None, "machine", f"{machine!r} is not described in {config_dir}")
    config = configs[machine]
    base = config.source.parent if config.source else Path.cwd()
    return (config_path(base, config.security.certificate), config_path(base, config.security.private_key),
            trust_folder(config, base))


@app.command("create")
def create(
    machine: MachineOpt = None,
    config: ConfigDir = Path("plc_configs"),
    folder: DirOpt = Path("pki"),
    days: Annotated[int, typer.Option(help="validity in days")] = 730,
    hostname: Annotated[list[str] | None, typer.Option(help="host names for the SubjectAltName (repeatable)")] = None,
    uri: Annotated[str | None, typer.Option(help="application URI (default: urn:mes-bridge:collector[:M])")] = None,
    force: Annotated[bool, typer.Option(help="replace existing files")] = False,
) -> None:
    """Create an OPC UA client certificate and private key; prints the paths and the thumbprint."""
    from mes_bridge.security import create_client_certificate, fingerprint, thumbprint

    with domain_errors():
        certificate = key = None
        if machine and config.is_dir():
            certificate, key, _ = _machine_paths(config, machine)
        name = machine or "collector"
        certificate = certificate or folder / f"{name}-cert.der"
        key = key or folder / f"{name}-key.pem"
        created = create_client_certificate(certificate, key, machine, days=days,
                                            hostnames=hostname or ("localhost",), uri=uri, overwrite=force)
    cert = created.certificate
    print(f"certificate:     {created.pair.certificate}")
    print(f"private key:     {created.pair.private_key} (readable by its owner only)")
    print(f"application URI: {created.pair.application_uri}")
    print(f"valid until:     {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC")
    print(f"thumbprint:      {thumbprint(cert)} (SHA-1)")
    print(f"SHA-256:         {fingerprint(cert)}")
    print("next: the server's administrator trusts the certificate file; the machine file says")
    print(f"  security: {{policy: Basic256Sha256, certificate: {created.pair.certificate}, "
          f"private_key: {created.pair.private_key}}}")


@app.command("trust")
def trust(
    file: Annotated[Path, typer.Argument(help="the server's certificate (DER or PEM)")],
    machine: MachineOpt = None,
    config: ConfigDir = Path("plc_configs"),
    folder: DirOpt = Path("pki"),
) -> None:
    """Trust an OPC UA server's certificate: copy it into the trust folder (the machine's, or DIR/trusted-servers)."""
    from mes_bridge.security import TrustList, application_uri_of, load_certificate, thumbprint

    with domain_errors():
        target: Path | None = None
        if machine:
            _, _, target = _machine_paths(config, machine)
        target = target or folder / "trusted-servers"
        cert = load_certificate(file)
        uri = application_uri_of(cert)
        thumb = thumbprint(cert)
        stored = TrustList(target).add(cert, name=thumb)
    print(f"trusted:         {stored}")
    print(f"server:          {cert.subject.rfc4514_string()} ({uri})")
    print(f"thumbprint:      {thumb}")
