"""From one OPC UA machine config to what a collector session needs: its tags and a configured asyncua ``Client``.

Owns: the configured nodes (counters first, then job and energy) and the decoding of their values; the client's
security (policy None / Basic256Sha256 Sign or SignAndEncrypt with the configured certificates, the trust list of
server certificates, optional username login with the password from the environment).

Invariants:
- Values are exact: counters are unsigned ints (anything else is refused, never coerced), energy a ``Decimal`` of
  the meter's shortest repr, an empty job None.
- A setting that cannot work fails with ``OpcUaConfigError`` naming the machine and the setting, before any
  connection is tried with it.
- Relative certificate paths are relative to the machine's config file (else the working directory).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from asyncua import Client, ua
from asyncua.crypto import security_policies

from mes_bridge.plc_config import MachineConfig, TagSpec
from mes_bridge.security import ServerTrust, application_uri_of
from mes_common.errors import DomainError


class OpcUaConfigError(DomainError):
    """A machine's OPC UA settings that cannot work (names the machine and the setting)."""

    code = "opcua_config"


@dataclass(frozen=True, slots=True)
class Tag:
    """One configured node of a machine, for one connection: ``node_id`` carries the server's namespace index."""

    name: str  # counter name, "job" or "energy"
    node_id: ua.NodeId  # a null id for a browse path not yet translated on this connection
    text: str = ""  # the node id or browse path as written in the machine's file (what errors and health name)
    path: tuple[tuple[str, str], ...] | None = None  # (namespace URI, browse name) from the Objects folder

    def named(self) -> str:
        return f"{self.name} node {self.text or self.node_id.to_string()}"


def _tag(config: MachineConfig, name: str, spec: TagSpec) -> Tag:
    if spec.path is not None:
        return Tag(name, ua.NodeId(), "path " + "/".join(spec.path) + (f" in {spec.namespace}" if spec.namespace
                                                                        else ""), spec.path_elements())
    if spec.node is None:
        raise OpcUaConfigError(f"machine {config.machine}: {name} has no OPC UA node or path")
    return Tag(name, _node_id(config, name, spec.node), spec.node)


def machine_tags(config: MachineConfig) -> list[Tag]:
    """The nodes of one machine as configured, counters first, then job and energy.

    ``nsu=`` node ids keep their namespace URI (``ua.ExpandedNodeId``) until ``resolve_tags`` gives them the index
    the server uses on this connection.
    """
    tags = [_tag(config, name, counter) for name, counter in config.counters.items()]
    for name, spec in (("job", config.job), ("energy", config.energy)):
        if spec is not None:
            tags.append(_tag(config, name, spec))
    return tags


def needs_namespaces(tags: Sequence[Tag]) -> bool:
    """Whether any node is addressed by namespace URI or browse path (resolved against the server on connect)."""
    return any(tag.path is not None or (isinstance(tag.node_id, ua.ExpandedNodeId) and tag.node_id.NamespaceUri)
               for tag in tags)


def resolve_tags(tags: Sequence[Tag], namespaces: Sequence[str]) -> tuple[list[Tag], dict[str, str]]:
    """The tags with ``nsu=`` ids turned into plain node ids against the server's ``NamespaceArray``.

    Returns the usable tags and, per tag name, why a tag is not usable (its namespace URI is not on the server).
    Indexes may change when a server restarts, so this runs on every connect.
    """
    usable: list[Tag] = []
    problems: dict[str, str] = {}
    for tag in tags:
        if tag.path is not None:
            continue  # translated by the server (``browse_path``), after this
        node_id = tag.node_id
        uri = node_id.NamespaceUri if isinstance(node_id, ua.ExpandedNodeId) else None
        if not uri:
            usable.append(tag)
            continue
        if uri not in namespaces:
            problems[tag.name] = f"namespace {uri!r} is not on the server (its namespaces: {', '.join(namespaces)})"
            continue
        index = list(namespaces).index(uri)
        resolved = ua.NodeId(node_id.Identifier, ua.Int16(index), node_id.NodeIdType)
        usable.append(Tag(tag.name, resolved, tag.text))
    return usable, problems


def browse_path(tag: Tag, namespaces: Sequence[str]) -> ua.BrowsePath | str:
    """The request to translate a tag's browse path (hierarchical references from the Objects folder), or the
    problem when one of its namespaces is not on the server."""
    assert tag.path is not None
    relative = ua.RelativePath()
    for uri, name in tag.path:
        if uri not in namespaces:
            return f"namespace {uri!r} is not on the server (its namespaces: {', '.join(namespaces)})"
        element = ua.RelativePathElement()
        element.ReferenceTypeId = ua.NodeId(ua.Int32(ua.ObjectIds.HierarchicalReferences))
        element.IsInverse = False  # type: ignore[assignment]  # ua.Boolean is bool on the wire
        element.TargetName = ua.QualifiedName(name, ua.UInt16(list(namespaces).index(uri)))
        relative.Elements.append(element)
    path = ua.BrowsePath()
    path.StartingNode = ua.NodeId(ua.Int32(ua.ObjectIds.ObjectsFolder))
    path.RelativePath = relative
    return path


def translated(tag: Tag, result: ua.BrowsePathResult) -> Tag | str:
    """The tag with the node its browse path leads to, or the problem (no such path, or several nodes)."""
    if not result.StatusCode.is_good() or not result.Targets:
        return f"browse path not found on the server ({result.StatusCode.name})"
    targets = [t for t in result.Targets if t.RemainingPathIndex == ua.UInt32(0xFFFFFFFF)]
    if len(targets) != 1:
        return f"browse path leads to {len(targets)} nodes, not one"
    target = targets[0].TargetId
    return Tag(tag.name, ua.NodeId(target.Identifier, target.NamespaceIndex, target.NodeIdType), tag.text, tag.path)


def _node_id(config: MachineConfig, tag: str, text: str) -> ua.NodeId:
    try:
        node_id = ua.NodeId.from_string(text)
    except Exception:
        raise OpcUaConfigError(f"machine {config.machine}: {tag} node {text!r} is not an OPC UA node id") from None
    if isinstance(node_id, ua.ExpandedNodeId) and node_id.ServerIndex:
        raise OpcUaConfigError(
            f"machine {config.machine}: {tag} node {text!r} points at another server (svr=); give the node on "
            f"{config.endpoint}"
        )
    return node_id


def tag_value(tag: str, variant_value: Any) -> int | Decimal | str | None:
    """An OPC UA value as the session wants it: counters int, energy Decimal (kWh), job text or None."""
    if variant_value is None:
        return None
    if tag == "job":
        text = str(variant_value).strip()
        return text or None
    if tag == "energy":
        if isinstance(variant_value, float):
            return Decimal(repr(variant_value))  # shortest repr: the decimal the meter wrote
        return Decimal(str(variant_value))
    if isinstance(variant_value, bool) or not isinstance(variant_value, int):
        raise ValueError(f"counter {tag!r} holds {variant_value!r}, not an unsigned integer")
    return variant_value



def config_path(base_dir: Path, value: Path | str | None) -> Path | None:
    """A certificate or key path of the config, relative ones taken relative to ``base_dir``."""
    if value is None:
        return None
    path = Path(value)
    return path if path.is_absolute() else base_dir / path


def trust_folder(config: MachineConfig, base_dir: Path) -> Path | None:
    """Where the machine's trusted server certificates live: ``trusted_servers``, else ``trusted-servers/`` next to
    the client certificate (None without either)."""
    security = config.security
    if security.trusted_servers is not None:
        return config_path(base_dir, security.trusted_servers)
    certificate = config_path(base_dir, security.certificate)
    return None if certificate is None else certificate.parent / "trusted-servers"


def default_trust(config: MachineConfig, base_dir: Path) -> Path | None:
    """The trust folder the client checks servers against: in strict mode always (it must exist), otherwise only
    when the folder exists."""
    folder = trust_folder(config, base_dir)
    if config.security.strict:
        if folder is None or not folder.is_dir():
            raise OpcUaConfigError(
                f"machine {config.machine}: strict security needs the trust folder {folder} with the server's "
                f"certificate (mes-bridge certs trust SERVER-CERT-FILE --machine {config.machine})"
            )
        return folder
    return folder if folder is not None and folder.is_dir() else None


async def make_client(
    config: MachineConfig,
    base_dir: Path,
    *,
    request_timeout: float,
    watchdog_interval: float,
    session_timeout_ms: int,
    password: str | None,
    trust: Path | None,
) -> Client:
    """A client for ``config``'s endpoint with its security, trust list and login set, not yet connected."""
    client = Client(config.endpoint, timeout=request_timeout, watchdog_intervall=watchdog_interval)
    client.session_timeout = session_timeout_ms
    client.name = client.description = f"mes-bridge collector {config.machine}"
    security = config.security
    if security is not None and security.policy not in (None, "None"):
        if security.policy != "Basic256Sha256":
            raise OpcUaConfigError(
                f"machine {config.machine}: security policy {security.policy!r} is not supported"
            )
        certificate = config_path(base_dir, security.certificate)
        private_key = config_path(base_dir, security.private_key)
        if certificate is None or private_key is None:
            raise OpcUaConfigError(
                f"machine {config.machine}: security policy Basic256Sha256 needs certificate and private_key"
            )
        client.application_uri = application_uri_of(certificate)
        mode = ua.MessageSecurityMode.Sign if security.mode == "Sign" else ua.MessageSecurityMode.SignAndEncrypt
        server_certificate = config_path(base_dir, security.server_certificate)
        await client.set_security(
            security_policies.SecurityPolicyBasic256Sha256,
            certificate=str(certificate),
            private_key=str(private_key),
            server_certificate=str(server_certificate) if server_certificate else None,
            mode=mode,
        )
    if trust is not None:
        client.certificate_validator = ServerTrust(trust)
    if security is not None and security.username:
        client.set_user(security.username)
        if password is None and security.password_env:
            password = os.environ.get(security.password_env)
            if password is None:
                raise OpcUaConfigError(
                    f"machine {config.machine}: environment variable "
                    f"{security.password_env} (the OPC UA password) is not set"
                )
        client.set_password(password or "")
    return client
