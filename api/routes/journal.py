"""The cost journal: lines dated in a window (JSON), and the CSV export of ``mes-bridge journal export``."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from api.deps import Accountant, ServicesDep
from api.errors import ERROR_RESPONSES
from api.params import moment
from wip_costing.reports import EXPORT_COLUMNS, export_row

router = APIRouter(prefix="/journal", tags=["journal"], responses=ERROR_RESPONSES)
From = Annotated[str | None, Query(alias="from", description="timestamp or date (its start)")]
To = Annotated[str | None, Query(alias="to", description="timestamp or date (its end)")]


def _row(line: dict[str, Any]) -> dict[str, Any]:
    return {k: cell or None for k, cell in zip(EXPORT_COLUMNS, export_row(line), strict=True)}


@router.get("/entries")
def entries(services: ServicesDep, _who: Accountant, start: From = None, end: To = None,
            limit: Annotated[int, Query(ge=1, le=100_000)] = 1000) -> dict[str, Any]:
    """Journal lines dated between ``from`` and ``to`` (oldest first, at most ``limit``): the export's columns."""
    lines = services.journal_lines(moment(start, "from", end_of_day=False), moment(end, "to", end_of_day=True), limit)
    return {"rows": [_row(line) for line in lines]}


@router.get("/export.csv", responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}})
def export(services: ServicesDep, _who: Accountant, start: From = None, end: To = None) -> StreamingResponse:
    """The CSV of ``mes-bridge journal export`` for lines dated between ``from`` and ``to``."""
    lines = services.journal_lines(moment(start, "from", end_of_day=False), moment(end, "to", end_of_day=True), None)

    def chunks() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(EXPORT_COLUMNS)
        for n, line in enumerate(lines, 1):
            writer.writerow(export_row(line))
            if n % 1000 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(chunks(), media_type="text/csv",
                             headers={"Content-Disposition": 'attachment; filename="journal.csv"'})
