"""``Annotated`` dependencies shared by the routers: the services, the caller's principal, role checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.services import ApiServices


def get_services(request: Request) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services


ServicesDep = Annotated[ApiServices, Depends(get_services)]
