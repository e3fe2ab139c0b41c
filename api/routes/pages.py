"""The operator's scan terminal and the accountant's WIP dashboard: server-rendered pages, their static files,
and the dashboard's server-sent-event stream.

The pages hold no data: their JavaScript reads the JSON API with the token the person entered once (kept in the
browser), so ``/terminal``, ``/dashboard`` and ``/pages/static/*`` need no token. Everything ships inside the
package (no CDN, no build step).

The stream is how the dashboard updates within a second of a change, whichever API process took the change: it
polls a cheap marker of the journal and the stored problems (``reports.change_marker``) every ``POLL_S`` and
sends a ``change`` event when it moves. EventSource cannot set headers, so the stream alone takes its token as
a query parameter.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import SQLAlchemyError

from api.auth import principal_for
from api.deps import READERS, Reader, ServicesDep
from api.params import Response, moment
from api.routes.collectors import MachineRow
from api.routes.events import Problem
from api.routes.wip import WipReport
from wip_costing import reports

PAGES = Path(__file__).resolve().parent.parent / "pages"
STATIC = {"app.css": "text/css", "common.js": "text/javascript", "terminal.js": "text/javascript",
          "dashboard.js": "text/javascript"}
POLL_S = 0.25
KEEPALIVE_S = 15.0
# A stream ends after this long and the browser reconnects by itself (checking the token again). Short, because
# uvicorn waits for open responses when it shuts down: Ctrl-C on a server with a dashboard open takes this long.
STREAM_MAX_S = 20.0

router = APIRouter(tags=["pages"])
templates = Jinja2Templates(directory=PAGES / "templates")
templates.env.globals["static"] = lambda name: f"/pages/static/{name}"


@router.get("/terminal", response_class=HTMLResponse, summary="Scan terminal page (touch screen, barcode wedge)")
def terminal(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "terminal.html")


@router.get("/dashboard", response_class=HTMLResponse, summary="WIP dashboard page (updates itself)")
def dashboard(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "dashboard.html")


class Dashboard(Response):
    """What the dashboard draws: each ``wip`` entry is exactly ``GET /wip?by=`` (keys ``operation``,
    ``work-center``, ``provenance``)."""

    wip: dict[str, WipReport]
    rejected: list[Problem]
    collectors: list[MachineRow]


@router.get("/dashboard.json", response_model=Dashboard, summary="The dashboard's figures as JSON (what it draws)")
def dashboard_json(
    services: ServicesDep, _reader: Reader,
    as_of: Annotated[str | None, Query(description="ISO 8601 timestamp with a timezone, or a date (its end, UTC)")]
    = None,
    rejected: Annotated[int, Query(ge=1, le=200, description="how many of the latest rejected events")] = 10,
) -> dict[str, Any]:
    """WIP value by operation, work center and provenance as of ``as_of`` (default: everything posted), the latest
    rejected events (newest first) and the collectors' health."""
    when = moment(as_of, "as_of", end_of_day=True)
    return {
        "wip": {by: services.wip_value(when, by) for by in ("operation", "work-center", "provenance")},
        "rejected": services.list_problems("rejected", rejected),
        "collectors": services.machine_health(),
    }


@router.get("/pages/static/{name}", include_in_schema=False)
def static_file(name: str) -> FileResponse:
    if name not in STATIC:  # an allowlist: no path from the request ever reaches the file system
        raise HTTPException(404, f"no page file {name!r}")
    return FileResponse(PAGES / "static" / name, media_type=STATIC[name], headers={"Cache-Control": "no-cache"})


# Not in the OpenAPI schema: a schema-driven client would open a stream that never ends.
@router.get("/dashboard/stream", include_in_schema=False)
async def dashboard_stream(
    request: Request, services: ServicesDep,
    token: Annotated[str | None, Query(description="an accountant, planner or admin token")] = None,
) -> StreamingResponse:
    """Server-sent events: ``change`` (data: the marker) whenever the journal or the stored problems changed."""
    principal = await run_in_threadpool(principal_for, services, token) if token else None
    if principal is None:
        raise HTTPException(401, "the stream needs ?token= with a valid API token (EventSource cannot send headers)")
    if principal.role not in READERS:
        allowed = ", ".join(role.value for role in READERS)
        raise HTTPException(403, f"a {principal.role.value} token may not watch WIP (allowed: {allowed})")

    def marker() -> tuple[int, ...]:
        with services.read() as conn:
            return reports.change_marker(conn)

    return StreamingResponse(
        changes(request, marker), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def changes(request: Request, marker: Callable[[], Any], *, poll_s: float = POLL_S,
                  keepalive_s: float = KEEPALIVE_S, max_s: float = STREAM_MAX_S) -> AsyncIterator[str]:
    """The event stream: the marker at once, then again each time it moves (``trouble`` while the database does
    not answer); a comment now and then so proxies keep the connection; ends after ``max_s`` (the browser
    reconnects) or when the client has gone."""
    loop = asyncio.get_running_loop()
    started = quiet_since = loop.time()
    last = None
    yield "retry: 1000\n\n"
    while loop.time() - started < max_s and not await request.is_disconnected():
        try:
            now = await run_in_threadpool(marker)
        except SQLAlchemyError as exc:  # the database is away: say so, keep polling until it is back
            now = last = None  # and announce the marker again when it is
            yield f"event: trouble\ndata: {json.dumps(f'the database does not answer: {type(exc).__name__}')}\n\n"
        if now is not None and now != last:
            last = now
            quiet_since = loop.time()
            yield f"event: change\ndata: {json.dumps(list(now))}\n\n"
        elif loop.time() - quiet_since >= keepalive_s:
            quiet_since = loop.time()
            yield ": still here\n\n"
        await asyncio.sleep(poll_s)
