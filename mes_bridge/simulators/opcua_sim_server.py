"""The asyncua server of a simulated OPC UA endpoint: its security, identities and certificates, and its teardown.

Owns: the security policy offered (None, Basic256Sha256 Sign / SignAndEncrypt), the server certificate and key (demo
ones, generated when missing, next to the collector's when none are given) with the trust list of client certificates,
username login against a fixed table (passwords from the environment named in the machine configs), and closing what a
stopped server leaves behind. The address space and the machines behind it belong to ``opcua_sim``.

Invariants:
- Exactly the configured policy and mode are offered; a policy the simulator does not implement is refused.
- Login: a configured user with the right password, or anonymous when allowed; anything else is BadUserAccessDenied.
- A stopped server keeps nothing: sessions that outlived their connections are closed with it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.user_managers import UserManager

from mes_bridge.plc_config import MachineConfig
from mes_bridge.security import TrustList, application_uri_of, ensure_demo_certificates, simulator_application_uri
from mes_common.errors import DomainError


class SimulatorError(DomainError):
    code = "simulator_error"


def demo_credentials(config: MachineConfig, base_dir: Path | None) -> tuple[Path, Path, Path]:
    """The server's certificate and key next to the collector's (generated when missing), and its trust list."""
    base = base_dir or (config.source.parent if config.source else Path.cwd())
    security = config.security
    assert security.certificate is not None  # the config model requires it for a secure policy
    certs = (base / security.certificate).parent
    ensure_demo_certificates(certs)
    server_cert = base / security.server_certificate if security.server_certificate else certs / "server-cert.der"
    return server_cert, certs / "server-key.pem", certs / "trusted-clients"


def users_from_config(configs: Sequence[MachineConfig]) -> dict[str, str]:
    users: dict[str, str] = {}
    for config in configs:
        security = config.security
        if security.username:
            password = os.environ.get(security.password_env or "")
            if password is None:
                raise SimulatorError(
                    f"machine {config.machine}: environment variable {security.password_env} "
                    f"(the password of OPC UA user {security.username!r}) is not set"
                )
            users[security.username] = password
    return users


async def secured_server(
    endpoint: str,
    machines: Sequence[str],
    *,
    policy: str | None,
    mode: str | None,
    certificate: Path | None,
    private_key: Path | None,
    trust: Path | None,
    users: Mapping[str, str],
    allow_anonymous: bool,
    strict: bool = False,
) -> Server:
    """A server for ``endpoint`` (serving ``machines``) with its security and identities set: no address space yet,
    not yet listening (asyncua's init takes a second or two)."""
    server = Server(user_manager=_UserManager(users) if users else None)
    await server.init()
    server.set_endpoint(endpoint)
    server.set_server_name(f"mes-bridge simulator {', '.join(machines)}")
    uri = (
        application_uri_of(certificate)
        if certificate
        else simulator_application_uri(machines[0])
    )
    await server.set_application_uri(uri)
    server.set_security_policy(security_policies(endpoint, policy, mode))
    tokens: list[type] = [ua.UserNameIdentityToken] if users else []
    if allow_anonymous:
        tokens.append(ua.AnonymousIdentityToken)
    server.set_identity_tokens(tokens)
    if certificate and private_key:
        await server.load_certificate(str(certificate))
        await server.load_private_key(str(private_key))
    if trust is not None and strict:
        # asyncua's own strict validation, as a vendor's server would do it: validity, application URI, key usage,
        # extended key usage (client), and the certificate in the trust folder.
        store = TrustStore([trust], [])
        await store.load()
        options = CertificateValidatorOptions.TRUSTED_VALIDATION | CertificateValidatorOptions.PEER_CLIENT
        server.set_certificate_validator(CertificateValidator(options, store))
    elif trust is not None:
        server.set_certificate_validator(TrustList(trust))
    return server


def security_policies(endpoint: str, policy: str | None, mode: str | None) -> list[ua.SecurityPolicyType]:
    if policy in (None, "None"):
        return [ua.SecurityPolicyType.NoSecurity]
    if policy != "Basic256Sha256":
        raise SimulatorError(f"endpoint {endpoint}: security policy {policy!r} is not simulated")
    if mode == "Sign":
        return [ua.SecurityPolicyType.Basic256Sha256_Sign]
    return [ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt]


class _UserManager(UserManager):
    """Username/password login against a fixed table; anything else is refused (BadUserAccessDenied)."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = dict(users)

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        if username is None:
            return User(role=UserRole.User)  # anonymous, when the endpoint allows it at all
        if username in self._users and self._users[username] == password:
            return User(role=UserRole.User, name=username)
        return None


async def close_detached_sessions(server: Server) -> None:
    """Close the sessions that outlived their connections: a stopped machine keeps nothing.

    asyncua keeps an activated session with subscriptions alive after its TCP connection drops (so that a
    client may transfer it, Part 4 §6.7), and ``Server.stop`` does not close such sessions: their timeout and
    publishing tasks would run on in this process after the server is gone.
    """
    sessions = getattr(server.iserver, "_external_sessions", {})
    for session in list(sessions.values()):
        await session.close_session(True)
