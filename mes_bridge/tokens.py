"""API tokens: who may call the HTTP API, in which role, bound to which work centers or machines.

Invariants:
- A token's secret is shown once, when it is created; only its SHA-256 is stored, so the table never holds
  anything that can be replayed.
- A revoked token stays in the table (who had access, and until when); it never authenticates again.
- A terminal token is bound to at least one work center, a collector token to at least one machine; other roles
  carry no bindings.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Integer, String, Table, Text, insert, select, update
from sqlalchemy.engine import Connection

from mes_common.db import UtcDateTime, metadata, utcnow
from mes_common.errors import DomainError

PREFIX = "mesb_"
LOOKUP_CHUNK = 500  # secrets per statement when many are looked up at once (the API's token refresh)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("work_centers", Text, nullable=False),  # JSON list of codes
    Column("machines", Text, nullable=False),  # JSON list of machine ids
    Column("created_at", UtcDateTime(), nullable=False),
    Column("revoked_at", UtcDateTime(), nullable=True),
)


class Role(StrEnum):
    TERMINAL = "terminal"
    COLLECTOR = "collector"
    PLANNER = "planner"
    ACCOUNTANT = "accountant"
    ADMIN = "admin"


class TokenRefused(DomainError):
    """A token that cannot be created or revoked as asked."""


@dataclass(frozen=True)
class TokenRecord:
    id: int
    name: str
    role: Role
    work_centers: tuple[str, ...]
    machines: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "role": self.role.value, "work_centers": list(self.work_centers),
                "machines": list(self.machines), "created_at": self.created_at.isoformat(),
                "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat()}


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _record(row: object) -> TokenRecord:
    r = row._mapping  # type: ignore[attr-defined]
    return TokenRecord(r["id"], r["name"], Role(r["role"]), tuple(json.loads(r["work_centers"])),
                       tuple(json.loads(r["machines"])), r["created_at"], r["revoked_at"])


def create_token(conn: Connection, role: str, *, work_centers: tuple[str, ...] = (), machines: tuple[str, ...] = (),
                 name: str | None = None) -> tuple[str, TokenRecord]:
    """A new token: returns its secret (shown once) and its record."""
    try:
        kind = Role(role)
    except ValueError:
        raise TokenRefused(f"role {role!r} is not one of {', '.join(r.value for r in Role)}") from None
    if kind is Role.TERMINAL and not work_centers:
        raise TokenRefused("a terminal token needs at least one --work-center it belongs to")
    if kind is Role.COLLECTOR and not machines:
        raise TokenRefused("a collector token needs at least one --machine it reads")
    if kind is not Role.TERMINAL and work_centers:
        raise TokenRefused(f"only terminal tokens are bound to work centers, not {kind.value} tokens")
    if kind is not Role.COLLECTOR and machines:
        raise TokenRefused(f"only collector tokens are bound to machines, not {kind.value} tokens")
    for code in (*work_centers, *machines):
        if not code or code != code.strip() or not code.isprintable():
            raise TokenRefused(f"binding {code!r} is empty or has surrounding spaces or invisible characters")
    secret = PREFIX + secrets.token_urlsafe(32)
    label = name or f"{kind.value}:{','.join(work_centers or machines) or 'all'}"
    now = utcnow()
    values = {"name": label[:128], "role": kind.value, "token_hash": hash_token(secret),
              "work_centers": json.dumps(sorted(set(work_centers))), "machines": json.dumps(sorted(set(machines))),
              "created_at": now, "revoked_at": None}
    new_id = conn.execute(insert(api_tokens).values(**values)).inserted_primary_key
    assert new_id is not None
    row = conn.execute(select(api_tokens).where(api_tokens.c.id == int(new_id[0]))).one()
    return secret, _record(row)


def find_token(conn: Connection, secret: str) -> TokenRecord | None:
    """The live (not revoked) token with this secret, or None."""
    return find_tokens(conn, [secret])[secret]


def find_tokens(conn: Connection, secrets_: Sequence[str]) -> dict[str, TokenRecord | None]:
    """Each secret's live (not revoked) token, or None: one statement per ``LOOKUP_CHUNK`` secrets."""
    hashes = {hash_token(secret): secret for secret in secrets_}
    found: dict[str, TokenRecord | None] = dict.fromkeys(secrets_)
    wanted = list(hashes)
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        rows = conn.execute(select(api_tokens).where(api_tokens.c.token_hash.in_(wanted[start:start + LOOKUP_CHUNK]),
                                                     api_tokens.c.revoked_at.is_(None)))
        for row in rows:
            found[hashes[row.token_hash]] = _record(row)
    return found


def list_tokens(conn: Connection) -> list[TokenRecord]:
    return [_record(r) for r in conn.execute(select(api_tokens).order_by(api_tokens.c.id))]


def revoke_token(conn: Connection, token_id: int) -> TokenRecord:
    """Revoke a token by its id (revoking twice is refused, naming when it was revoked)."""
    row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).first()
    if row is None:
        raise TokenRefused(f"no token with id {token_id} (mes-bridge token list shows them)")
    found = _record(row)
    if found.revoked_at is not None:
        raise TokenRefused(f"token {token_id} ({found.name}) was already revoked at {found.revoked_at.isoformat()}")
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=utcnow()))
    return _record(conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).one())
