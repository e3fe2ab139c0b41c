"""``Annotated`` dependencies shared by the routers: the services, the caller's principal, role checks.

Missing or unknown / revoked token: 401. A role that may not call the route: 403 naming the roles that may.
Bindings (a terminal's work centers, a collector's machines) are checked by the routes that know the work center
or machine concerned, through ``Principal.may_act_at`` / ``may_act_for``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import Principal, Role, principal_for
from api.services import ApiServices

bearer = HTTPBearer(auto_error=False, description="an API token: mes-bridge token create --role ROLE")


# The dependencies are coroutines: they run on the event loop (no thread hop per request); only a token look-up
# missing from the services' cache goes to a thread.
async def get_services(request: Request) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services


ServicesDep = Annotated[ApiServices, Depends(get_services)]


async def get_principal(services: ServicesDep,
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    if credentials is None:
        raise HTTPException(401, "no API token: send the header 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    hit, record = services.cached_token(credentials.credentials)
    if hit:
        principal = None if record is None else Principal.of(record)
    else:
        principal = await run_in_threadpool(principal_for, services, credentials.credentials)
    if principal is None:
        raise HTTPException(401, "unknown or revoked API token", headers={"WWW-Authenticate": "Bearer"})
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the caller's principal, if its role is one of ``roles`` (else 403)."""
    allowed = frozenset(roles)
    names = ", ".join(r.value for r in roles)

    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(403, f"a {principal.role.value} token may not do this (allowed: {names})")
        return principal

    return check


# The role groups the routers use (one place to read who may do what).
READERS = (Role.PLANNER, Role.ACCOUNTANT, Role.ADMIN)
Reader = Annotated[Principal, Depends(require_roles(*READERS))]
Planner = Annotated[Principal, Depends(require_roles(Role.PLANNER, Role.ADMIN))]
Accountant = Annotated[Principal, Depends(require_roles(Role.ACCOUNTANT, Role.ADMIN))]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Terminal = Annotated[Principal, Depends(require_roles(Role.TERMINAL, Role.ADMIN))]
EventSender = Annotated[Principal, Depends(require_roles(Role.COLLECTOR, Role.PLANNER, Role.ADMIN))]
CollectorOrAdmin = Annotated[Principal, Depends(require_roles(Role.COLLECTOR, Role.ADMIN))]
OrderViewer = Annotated[Principal, Depends(require_roles(Role.TERMINAL, *READERS))]
MachineScanner = Annotated[Principal, Depends(require_roles(Role.TERMINAL, Role.PLANNER, Role.ADMIN))]
MachineWatcher = Annotated[Principal, Depends(require_roles(Role.COLLECTOR, Role.TERMINAL, *READERS))]
