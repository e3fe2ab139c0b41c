"""Random rows thrown at every CSV importer on a real database (SQLite and PostgreSQL): each file is imported or
refused with a ``DomainError`` naming row and column, never a driver traceback (a value too long or too large for
its column included)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from bom.importer import import_bom
from ledger.importer import import_balances, import_items, import_locations
from mes_common.errors import DomainError
from routing.importer import import_operations, import_work_centers
from tests.integration.wip_costing.plant import load_plant

HEADERS = {
    "items": "code,name,uom,kind",
    "locations": "code,name,kind",
    "balances": "item,location,lot,qty,unit_cost",
    "work_centers": "code,name,labor_rate,machine_rate,energy_tariff,cost_center,machines,terminals",
    "operations": "item,revision,valid_from,valid_to,operation,work_center,setup_min,run_min_per_unit,"
                  "std_kwh_per_unit,yield_pct,rework_to,quality_standard",
    "bom": "parent,revision,valid_from,valid_to,component,qty_per,uom,scrap_pct,operation,phantom",
}
cells = st.one_of(
    st.sampled_from(["RM-STEEL", "RM-BOLT", "FG-BRACKET", "STORES", "FG", "WC-LASER", "A", "2026-01-01", "raw",
                     "stores", "pcs", "true", "10", "20", "0", "1", "2.5", "", "1" * 70, "9" * 31, "1e30", "LASER-1",
                     "M" * 65 + ";X", "0.0000001", "99999999999", "2026-02-30", "-1"]),
    st.text(alphabet=st.characters(codec="ascii", exclude_characters=",\r\n\""), max_size=80),
    st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: format(d, "f")[:60]),
)


def _run(engine: Engine, kind: str, data: bytes) -> None:
    importers = {
        "items": lambda c: import_items(c, data, actor="fuzz"),
        "locations": lambda c: import_locations(c, data, actor="fuzz"),
        "balances": lambda c: import_balances(c, data, actor="fuzz"),
        "work_centers": lambda c: import_work_centers(c, data),
        "operations": lambda c: import_operations(c, data),
        "bom": lambda c: import_bom(c, data),
    }
    with engine.connect() as conn:
        trans = conn.begin()
        try:
            importers[kind](conn)
        except DomainError:
            pass
        finally:
            trans.rollback()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.data())
def test_random_rows_are_imported_or_refused_never_a_traceback(engine: Engine, example_plant: Path,
                                                               data: st.DataObject) -> None:
    if not getattr(engine, "_fuzz_plant", False):
        load_plant(engine, example_plant)
        engine._fuzz_plant = True  # type: ignore[attr-defined]
    kind = data.draw(st.sampled_from(sorted(HEADERS)))
    width = HEADERS[kind].count(",") + 1
    rows = data.draw(st.lists(st.lists(cells, min_size=width, max_size=width).map(",".join), min_size=1,
                              max_size=4))
    _run(engine, kind, ("\n".join([HEADERS[kind], *rows]) + "\n").encode())
