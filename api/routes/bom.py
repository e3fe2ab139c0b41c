"""BOMs for planners: explosion (JSON, CSV or XLSX), where-used, version diff, standard cost roll-up, net
requirements of a plan (JSON, CSV or XLSX). The JSON is the CLI's ``--format json`` / ``--json``."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response as HttpResponse
from pydantic import Field

from api.deps import Reader, ServicesDep
from api.errors import ERROR_RESPONSES
from api.params import Request, day
from api.routes.fields import Code, Quantity
from bom import diff as bom_diff
from bom import planning
from mes_bridge.cli.bom_cmds import EXPLOSION_COLUMNS, TOTAL_COLUMNS, explosion_records, total_records
from mes_common.money import fmt_qty

router = APIRouter(prefix="/bom", tags=["bom"], responses=ERROR_RESPONSES)

Format = Literal["json", "csv", "xlsx"]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOWNLOADS: dict[int | str, dict[str, Any]] = {200: {"content": {
    "text/csv": {"schema": {"type": "string"}}, XLSX: {"schema": {"type": "string", "format": "binary"}}}}}


def download(sheets: dict[str, tuple[list[dict[str, Any]], tuple[str, ...]]], fmt: Format, name: str) -> HttpResponse:
    """CSV (the first sheet) or an XLSX workbook of ``sheets`` (name -> records, columns), as a file download."""
    if fmt == "csv":
        records, columns = next(iter(sheets.values()))
        text = planning.to_frame(records, columns).to_csv(index=False)
        return HttpResponse(text, media_type="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    import pandas as pd

    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for sheet, (records, columns) in sheets.items():
            planning.to_frame(records, columns).to_excel(writer, sheet_name=sheet, index=False)
    return HttpResponse(buffer.getvalue(), media_type=XLSX,
                        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})


@router.get("/{item}/explode", responses=DOWNLOADS)
def explode(item: str, services: ServicesDep, _who: Reader, qty: Annotated[Decimal, Query(gt=0, lt=10**9)] = Decimal(1),
            as_of: str | None = None, format: Format = "json", flat: bool = False) -> Any:
    """Multi-level explosion of ``qty`` x ``item`` as of a date: indented rows and totals per component."""
    when = day(as_of, "as_of")
    exp = services.explode(item, qty, when)
    if format == "json":
        return {"item": exp.item, "revision": exp.revision, "qty": fmt_qty(exp.qty), "as_of": when.isoformat(),
                "rows": explosion_records(exp), "totals": total_records(exp)}
    text = format == "csv"
    sheets = {"explosion": (explosion_records(exp, text), EXPLOSION_COLUMNS),
              "totals": (total_records(exp, text), TOTAL_COLUMNS)}
    if flat:
        sheets = {"totals": sheets["totals"]}
    return download(sheets, format, f"{item}-explosion")


@router.get("/{item}/where-used")
def where_used(item: str, services: ServicesDep, _who: Reader, as_of: str | None = None) -> dict[str, Any]:
    """Every released parent that uses ``item``, level by level up to the top."""
    when = day(as_of, "as_of")
    return {"item": item, "as_of": when.isoformat(), "rows": [
        {"level": r.level, "parent": r.parent, "revision": r.revision, "component": r.component,
         "qty_per": fmt_qty(r.qty_per), "operation": r.operation, "phantom": r.phantom, "qty": fmt_qty(r.qty),
         "path": list(r.path)}
        for r in services.where_used(item, when)]}


def _show(value: Any) -> Any:
    if isinstance(value, Decimal):
        return fmt_qty(value)
    if isinstance(value, date):
        return value.isoformat()
    return value if value is None or isinstance(value, bool | int) else str(value)


@router.get("/{item}/diff")
def diff(item: str, services: ServicesDep, _who: Reader,
         rev_from: Annotated[str, Query(alias="from")], rev_to: Annotated[str, Query(alias="to")]) -> dict[str, Any]:
    """Lines added, removed and changed from revision ``from`` to ``to``."""
    result = services.bom_diff(item, rev_from, rev_to)

    def line(x: Any) -> dict[str, Any]:
        return {f: _show(getattr(x, f)) for f in ("component", *bom_diff.FIELDS)}

    return {"item": item, "from": rev_from, "to": rev_to,
            "header": {k: [_show(a), _show(b)] for k, (a, b) in result.header.items()},
            "added": [line(x) for x in result.added], "removed": [line(x) for x in result.removed],
            "changed": [{"component": c.component, "operation": c.operation,
                         "changes": {k: [_show(a), _show(b)] for k, (a, b) in c.changes.items()}}
                        for c in result.changed]}


@router.get("/{item}/rollup")
def rollup(item: str, services: ServicesDep, _who: Reader, as_of: str | None = None,
           qty: Annotated[Decimal, Query(gt=0, lt=10**9)] = Decimal(1)) -> dict[str, Any]:
    """Standard cost per unit: materials at ledger cost (made items rolled up) plus routing conversion."""
    result: dict[str, Any] = services.rollup(item, day(as_of, "as_of"), qty).to_json()
    return result


class PlanLine(Request):
    item: Code
    qty: Quantity
    due: date


class Plan(Request):
    plan: Annotated[list[PlanLine], Field(min_length=1, max_length=10_000)]
    open_needs: Annotated[dict[str, Annotated[Decimal, Field(ge=0, lt=Decimal(10) ** 9)]], Field(
        default_factory=dict, description="further open needs per item, added to those of the open work orders")]
    include_wip: Annotated[bool, Field(description="count the open work orders' remaining needs")] = True
    all: Annotated[bool, Field(description="every component, not only shortages")] = False


@router.post("/net-requirements", responses=DOWNLOADS)
def net_requirements(body: Plan, services: ServicesDep, _who: Reader, format: Format = "json") -> Any:
    """Net a plan against on-hand stock and open needs; the shortages (or every component with ``all``)."""
    rows = [planning.PlanRow(p.item, p.qty, p.due) for p in body.plan]
    result = services.net_requirements(rows, body.open_needs, body.include_wip)
    shown = result if body.all else planning.shortages(result)
    records = planning.to_records(shown, text=format != "xlsx")
    if format == "json":
        return {"rows": records}
    return download({"requirements": (records, tuple(planning.COLUMNS))}, format, "net-requirements")
