"""Tokens over HTTP (admin): create (the secret is in the answer, once), list, revoke; and ``GET /auth/me`` for
any token to learn who it is (the pages show it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import Field

from api.deps import Admin, PrincipalDep, ServicesDep
from api.errors import ERROR_RESPONSES
from api.params import Request, Response
from api.routes.fields import CODE_PATTERN, Code
from mes_bridge.tokens import Role

router = APIRouter(tags=["tokens"], responses=ERROR_RESPONSES)


class NewToken(Request):
    role: Role
    work_centers: Annotated[tuple[Code, ...], Field(max_length=1000)] = ()
    machines: Annotated[tuple[Code, ...], Field(max_length=1000)] = ()
    name: Annotated[str | None, Field(min_length=1, max_length=128, pattern=CODE_PATTERN)] = None


class TokenInfo(Response):
    id: int
    name: str
    role: str
    work_centers: list[str]
    machines: list[str]
    created_at: str
    revoked_at: str | None


class Created(TokenInfo):
    token: str


class Tokens(Response):
    rows: list[TokenInfo]


class Me(Response):
    role: str
    name: str
    work_centers: list[str]
    machines: list[str]


@router.post("/tokens", response_model=Created, status_code=201)
def create(body: NewToken, services: ServicesDep, _who: Admin) -> dict[str, Any]:
    """A new token; its secret is in this answer only (stored hashed)."""
    secret, record = services.create_token(body.role, body.work_centers, body.machines, body.name)
    return {**record.to_json(), "token": secret}


@router.get("/tokens", response_model=Tokens)
def list_tokens(services: ServicesDep, _who: Admin) -> dict[str, Any]:
    """Every token (never its secret), revoked ones with when."""
    return {"rows": [t.to_json() for t in services.list_tokens()]}


@router.post("/tokens/{token_id}/revoke", response_model=TokenInfo)
def revoke(token_id: int, services: ServicesDep, _who: Admin) -> dict[str, Any]:
    """Revoke a token: it stops working at once on this process, within seconds on the others."""
    return services.revoke_token(token_id).to_json()


@router.get("/auth/me", response_model=Me)
def me(principal: PrincipalDep) -> dict[str, Any]:
    """Who this token is: role, name and bindings."""
    return {"role": principal.role.value, "name": principal.name, "work_centers": sorted(principal.work_centers),
            "machines": sorted(principal.machines)}
