"""Machine descriptions (``plc_configs/*.yaml``): the models and the loader that validates them.

One YAML file per machine. Invariants:
- A config that loads is complete and consistent: its protocol's addressing is present on every tag
  (``node`` or ``path`` + ``namespace`` for OPC UA, ``register`` for Modbus), its counter names fit its kind,
  machine ids are unique.
- Nothing loads partially: any problem raises ``ConfigError`` naming the file, the line and the field
  (lines come from PyYAML's composed node marks, so a misspelled field points at its own line).
- Decimal settings (scale, ratios, kWh) are exact: a YAML float is read back from its written digits.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from mes_common.errors import DomainError

Kind = Literal["cnc", "press", "vision", "generic"]
Protocol = Literal["opcua", "modbus"]
EventField = Literal["good", "scrap", "rework"]

PARTS_COUNTERS: tuple[str, ...] = ("good", "scrap", "rework")
VISION_COUNTERS: tuple[str, ...] = ("pass", "fail", "rework")


class ConfigError(DomainError):
    """A machine description that cannot be used: names the file, line and field of every problem."""

    code = "bad_plc_config"

    def __init__(self, file: Path | str, line: int | None, field: str, problem: str,
                 more: list[str] | None = None) -> None:
        where = f"{file}:{line}" if line else f"{file}"
        first = f"{where}: field {field!r}: {problem}"
        super().__init__("\n".join([first, *(more or [])]))
        self.file = str(file)
        self.line = line
        self.field = field


def _exact(value: Any) -> Any:
    # YAML turns 0.05 into a binary float; its shortest repr is what the author wrote.
    if isinstance(value, float):
        return repr(value)
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RegisterSpec(_Model):
    """A Modbus value: 16- or 32-bit, word/byte order, scaled by an exact decimal factor."""

    table: Literal["holding", "input", "coil", "discrete"] = "holding"
    address: int = Field(ge=0, le=65535)
    type: Literal["uint16", "int16", "uint32", "int32"] = "uint16"
    word_order: Literal["big", "little"] = "big"
    byte_order: Literal["big", "little"] = "big"
    scale: Decimal = Decimal(1)

    _scale_exact = field_validator("scale", mode="before")(_exact)

    @property
    def width(self) -> int:
        """Number of 16-bit registers the value spans (1 for coils and discrete inputs)."""
        return 2 if self.type in ("uint32", "int32") and self.table in ("holding", "input") else 1

    @property
    def bits(self) -> int:
        if self.table in ("coil", "discrete"):
            return 1
        return 32 if self.type in ("uint32", "int32") else 16


class TagSpec(_Model):
    """Where one value lives on the machine: an OPC UA node id or a Modbus register."""

    node: str | None = None
    # OPC UA browse path from the Objects folder (companion specifications address by browse name, not node id):
    # browse names in ``namespace`` (a URI), or an element "nsu=URI;Name" in another namespace.
    path: list[str] | None = None
    namespace: str | None = None
    # "register" would shadow a BaseModel attribute; the YAML key stays "register".
    reg: RegisterSpec | None = Field(default=None, alias="register")
    bits: Literal[16, 32] | None = None
    # A drop smaller than this from near the top of the range is a rollover, otherwise a reset.
    rollover_window: int | None = Field(default=None, gt=0)
    format: str | None = None

    @model_validator(mode="after")
    def _one_address(self) -> TagSpec:
        if sum(x is not None for x in (self.node, self.path, self.reg)) != 1:
            raise ValueError("give exactly one of 'node' or 'path' (OPC UA) or 'register' (Modbus)")
        if self.path is not None:
            if not self.path or any(not part.strip() for part in self.path):
                raise ValueError("'path' needs one or more browse names")
            if self.namespace is None and not all(part.startswith("nsu=") for part in self.path):
                raise ValueError("'path' needs 'namespace' (the URI of its browse names)")
        elif self.namespace is not None:
            raise ValueError("'namespace' goes with 'path'")
        if self.format is not None and "{value}" not in self.format:
            raise ValueError(f"format {self.format!r} must contain '{{value}}'")
        return self

    def path_elements(self) -> tuple[tuple[str, str], ...]:
        """The browse path as (namespace URI, browse name) pairs (an element "nsu=URI;Name" names its own)."""
        out = []
        for part in self.path or ():
            if part.startswith("nsu="):
                uri, _, name = part[4:].partition(";")
                out.append((uri, name))
            else:
                out.append((self.namespace or "", part))
        return tuple(out)

    @property
    def counter_bits(self) -> int:
        """Width at which the counter rolls over: ``bits`` if given, else the register's width, else 32."""
        if self.bits is not None:
            return self.bits
        if self.reg is not None and self.reg.bits in (16, 32):
            return self.reg.bits
        return 32

    @property
    def window(self) -> int:
        return self.rollover_window if self.rollover_window is not None else (1 << self.counter_bits) // 16

    def job_text(self, raw: object) -> str | None:
        """The work order a job-tag value names (``format`` applied), or None for an empty tag."""
        if raw is None:
            return None
        text = str(raw).strip()
        if text in ("", "0") and self.reg is not None:
            return None  # a numeric job register at 0 means "no job loaded"
        if text == "":
            return None
        return self.format.format(value=text) if self.format else text


class SecurityConfig(_Model):
    policy: Literal["None", "Basic256Sha256"] = "None"
    mode: Literal["Sign", "SignAndEncrypt"] = "SignAndEncrypt"
    certificate: Path | None = None
    private_key: Path | None = None
    server_certificate: Path | None = None
    # Strict: a server is accepted only when its certificate is in ``trusted_servers`` (default: the folder
    # ``trusted-servers/`` next to ``certificate``); an unknown one is refused, its thumbprint in the error.
    strict: bool = False
    trusted_servers: Path | None = None
    username: str | None = None
    password_env: str | None = None

    @model_validator(mode="after")
    def _certificates(self) -> SecurityConfig:
        if self.policy != "None" and (self.certificate is None or self.private_key is None):
            raise ValueError(f"policy {self.policy} needs 'certificate' and 'private_key'")
        if self.strict and self.policy == "None":
            raise ValueError("strict needs policy Basic256Sha256: with policy None no server certificate is checked")
        if self.username is not None and self.password_env is None:
            raise ValueError("'username' needs 'password_env' (the environment variable holding the password)")
        return self


class ConnectionConfig(_Model):
    """How hard and how often a collector talks to the machine (all in milliseconds).

    The defaults read again within about 2 s of a server coming back: the reconnect backoff starts at
    ``reconnect_initial_ms`` and doubles up to ``reconnect_max_ms`` (each wait jittered to [half, full]), so a
    server that returns is tried again within ``reconnect_max_ms`` plus one connect.
    """

    request_timeout_ms: int = Field(default=4000, gt=0, le=600_000)
    connect_timeout_ms: int = Field(default=8000, gt=0, le=600_000)
    # OPC UA keepalive probe (a read of the server state): a frozen server is noticed within about two of these.
    keepalive_interval_ms: int = Field(default=1000, gt=0, le=600_000)
    session_timeout_ms: int = Field(default=60_000, ge=1000, le=3_600_000)
    reconnect_initial_ms: int = Field(default=200, gt=0, le=600_000)
    reconnect_max_ms: int = Field(default=1000, gt=0, le=3_600_000)

    @model_validator(mode="after")
    def _backoff_order(self) -> ConnectionConfig:
        if self.reconnect_max_ms < self.reconnect_initial_ms:
            raise ValueError(
                f"reconnect_max_ms ({self.reconnect_max_ms}) must not be below "
                f"reconnect_initial_ms ({self.reconnect_initial_ms})"
            )
        return self


class InspectionConfig(_Model):
    """Vision station: pass -> good, fail -> scrap or rework, at the inspected operation."""

    operation: int = Field(gt=0)
    fail_as: Literal["scrap", "rework"] = "scrap"


class SimulationConfig(_Model):
    parts_per_minute: Decimal = Field(default=Decimal(60), ge=0)
    scrap_ratio: Decimal = Field(default=Decimal(0), ge=0, le=1)
    rework_ratio: Decimal = Field(default=Decimal(0), ge=0, le=1)
    kwh_per_part: Decimal = Field(default=Decimal(0), ge=0)
    job: str | None = None
    counter_start: int = Field(default=0, ge=0)

    _exact_fields = field_validator(
        "parts_per_minute", "scrap_ratio", "rework_ratio", "kwh_per_part", mode="before"
    )(_exact)

    @model_validator(mode="after")
    def _ratios(self) -> SimulationConfig:
        if self.scrap_ratio + self.rework_ratio > 1:
            raise ValueError("scrap_ratio + rework_ratio must not exceed 1")
        return self


def _check_addressing(name: str, tag: TagSpec, info: ValidationInfo) -> None:
    protocol = info.data.get("protocol")
    if protocol == "opcua" and tag.node is None and tag.path is None:
        raise ValueError(f"{name}: protocol opcua needs 'node' or 'path'")
    if protocol == "modbus" and tag.reg is None:
        raise ValueError(f"{name}: protocol modbus needs 'register'")


class MachineConfig(_Model):
    machine: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    work_center: str = Field(min_length=1)
    kind: Kind = "generic"
    protocol: Protocol
    endpoint: str
    device_id: int = Field(default=1, ge=0, le=255)
    operation: int | None = Field(default=None, gt=0)
    publishing_interval_ms: int = Field(default=250, gt=0)
    poll_interval_ms: int = Field(default=1000, gt=0)
    connection: ConnectionConfig = ConnectionConfig()
    security: SecurityConfig = SecurityConfig()
    counters: dict[str, TagSpec]
    job: TagSpec | None = None
    energy: TagSpec | None = None
    inspection: InspectionConfig | None = None
    work_order: str | None = None
    simulation: SimulationConfig = SimulationConfig()
    # The file it came from (set by the loader, not written in YAML).
    source: Path | None = Field(default=None, exclude=True)

    @field_validator("endpoint")
    @classmethod
    def _endpoint_scheme(cls, value: str, info: ValidationInfo) -> str:
        protocol = info.data.get("protocol")
        scheme = "opc.tcp://" if protocol == "opcua" else "tcp://"
        if protocol and not value.startswith(scheme):
            raise ValueError(f"endpoint {value!r} must start with {scheme} for protocol {protocol}")
        return value

    @field_validator("counters")
    @classmethod
    def _counter_names(cls, value: dict[str, TagSpec], info: ValidationInfo) -> dict[str, TagSpec]:
        allowed = VISION_COUNTERS if info.data.get("kind") == "vision" else PARTS_COUNTERS
        if not value:
            raise ValueError(f"needs at least one of {', '.join(allowed)}")
        for name, tag in value.items():
            if name not in allowed:
                kind = info.data.get("kind")
                raise ValueError(f"counter {name!r} is not one of {', '.join(allowed)} for kind {kind}")
            _check_addressing(name, tag, info)
        return value

    @field_validator("job", "energy")
    @classmethod
    def _tag_addressing(cls, value: TagSpec | None, info: ValidationInfo) -> TagSpec | None:
        if value is not None:
            _check_addressing(str(info.field_name), value, info)
        return value

    @field_validator("inspection")
    @classmethod
    def _inspection_for_vision(cls, value: InspectionConfig | None, info: ValidationInfo) -> InspectionConfig | None:
        if value is not None and info.data.get("kind") != "vision":
            raise ValueError("is only for kind vision")
        return value

    def tags(self) -> dict[str, TagSpec]:
        """Every value read from the machine by name: counters, then "job" and "energy" when configured."""
        out = dict(self.counters)
        if self.job is not None:
            out["job"] = self.job
        if self.energy is not None:
            out["energy"] = self.energy
        return out

    def event_field(self, counter: str) -> EventField:
        """Which quantity of an ``OperationEvent`` a counter feeds (vision: pass/fail mapped)."""
        if counter == "pass":
            return "good"
        if counter == "fail":
            return self.inspection.fail_as if self.inspection else "scrap"
        if counter in PARTS_COUNTERS:
            return counter  # type: ignore[return-value]
        raise KeyError(counter)

    def event_operation(self) -> int | None:
        """The routing operation events name: the inspected one, the pinned one, or None (service resolves)."""
        if self.inspection is not None:
            return self.inspection.operation
        return self.operation

    def host_port(self, default_port: int) -> tuple[str, int]:
        """Host and port of the endpoint (for servers and Modbus sockets)."""
        rest = self.endpoint.split("://", 1)[1]
        hostport = rest.split("/", 1)[0]
        if ":" in hostport:
            host, port = hostport.rsplit(":", 1)
            return host, int(port)
        return hostport, default_port


_MISSPELLED = "is not a known field (misspelled?)"

# --- loading -------------------------------------------------------------------------------------------


def _node_at(root: yaml.Node, loc: tuple[int | str, ...]) -> tuple[yaml.Node, bool]:
    """The node at a pydantic error location, or its deepest existing ancestor; flag says exact."""
    node = root
    for part in loc:
        nxt: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if key.value == part:
                    # a misspelled (extra) field is best shown at its key; others at the value
                    nxt = value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        if nxt is None:
            return node, False
        node = nxt
    return node, True


def _key_line(root: yaml.Node, loc: tuple[int | str, ...]) -> int | None:
    parent, exact = _node_at(root, loc[:-1])
    if exact and isinstance(parent, yaml.MappingNode):
        for key, _ in parent.value:
            if key.value == loc[-1]:
                return int(key.start_mark.line) + 1
    return None


def _duplicate_keys(node: yaml.Node, path: str = "") -> tuple[int, str] | None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = f"{path}.{key.value}" if path else str(key.value)
            if key.value in seen:
                return int(key.start_mark.line) + 1, name
            seen.add(key.value)
            found = _duplicate_keys(value, name)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = _duplicate_keys(item, f"{path}[{i}]")
            if found:
                return found
    return None


def parse_config(text: str, file: Path | str) -> MachineConfig:
    """Validate one machine description; raises ``ConfigError`` naming file, line and field."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(file, line, "(yaml)", str(exc.problem or exc).strip()) from None
    if root is None or not isinstance(data, dict):
        raise ConfigError(file, 1, "(document)", "must be a mapping with 'machine', 'protocol', 'counters'...")
    duplicate = _duplicate_keys(root)
    if duplicate:
        raise ConfigError(file, duplicate[0], duplicate[1], "is given twice")
    try:
        config = MachineConfig.model_validate(data)
    except ValidationError as exc:
        problems: list[tuple[int | None, str, str]] = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            field = ".".join(str(p) for p in loc) or "(machine)"
            if err["type"] == "extra_forbidden":
                line = _key_line(root, loc)
                message = _MISSPELLED
            else:
                node, _ = _node_at(root, loc)
                line = int(node.start_mark.line) + 1
                message = err["msg"].removeprefix("Value error, ")
            problems.append((line, field, message))
        # a misspelled field usually explains the "missing" one next to it: show it first
        problems.sort(key=lambda p: p[2] != _MISSPELLED)
        first, *rest = problems
        more = [f"{file}:{ln}: field {fld!r}: {msg}" for ln, fld, msg in rest]
        raise ConfigError(file, first[0], first[1], first[2], more) from None
    return config.model_copy(update={"source": Path(file)})


def load_config(path: Path) -> MachineConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, None, "(file)", f"cannot be read: {exc}") from None
    return parse_config(text, path)


def load_configs(directory: Path | str) -> list[MachineConfig]:
    """Every ``*.yaml`` / ``*.yml`` machine description in ``directory``, sorted by file name.

    Raises ``ConfigError`` for the first bad file, a duplicate machine id, or an empty folder.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise ConfigError(folder, None, "(directory)", "is not a directory")
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not files:
        raise ConfigError(folder, None, "(directory)", "holds no *.yaml machine description")
    configs: list[MachineConfig] = []
    seen: dict[str, Path] = {}
    for path in files:
        config = load_config(path)
        if config.machine in seen:
            line = _machine_line(path)
            problem = f"{config.machine!r} is already described in {seen[config.machine]}"
            raise ConfigError(path, line, "machine", problem)
        seen[config.machine] = path
        configs.append(config)
    return configs


def _machine_line(path: Path) -> int | None:
    root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    return _key_line(root, ("machine",)) if root is not None else None
