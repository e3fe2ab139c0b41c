"""The principal a bearer token stands for, and what its role and bindings allow.

Tokens are stored hashed (``mes_bridge.tokens``: SHA-256 of a random secret). A terminal acts only for its work
centers, a collector only for its machines; planner, accountant and admin carry no bindings.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.services import ApiServices
from mes_bridge.tokens import Role, TokenRecord

__all__ = ["Principal", "Role", "principal_for"]


@dataclass(frozen=True)
class Principal:
    role: Role
    work_centers: frozenset[str]
    machines: frozenset[str]
    name: str
    token_id: int

    @classmethod
    def of(cls, record: TokenRecord) -> Principal:
        return cls(record.role, frozenset(record.work_centers), frozenset(record.machines), record.name, record.id)

    def may_act_at(self, work_center: str) -> bool:
        """A terminal only at its own work centers; roles without bindings anywhere."""
        return self.role is not Role.TERMINAL or work_center in self.work_centers

    def may_act_for(self, machine: str) -> bool:
        """A collector only for its own machines; roles without bindings for any."""
        return self.role is not Role.COLLECTOR or machine in self.machines


def principal_for(services: ApiServices, token: str) -> Principal | None:
    """The principal of a live token, or None (unknown or revoked)."""
    record = services.find_token(token)
    return None if record is None else Principal.of(record)
