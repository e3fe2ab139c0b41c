"""Standard cost roll-up (SPEC's 10.68) and the planner's net requirements."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from bom.model import BomError
from bom.planning import PlanRow, net_requirements, shortages, to_records
from bom.rollup import money_text, qty_text, roll_up, unit_cost_text
from bom.structure import BomIndex
from routing.model import Operation, RoutingVersion, VersionState, WorkCenter
from tests.unit.bom.helpers import JAN1, bom, line

D = Decimal
CENTERS = {
    "WC-LASER": WorkCenter("WC-LASER", "Laser", D("30.00"), D("60.00"), D("0.20"), "CC-100"),
    "WC-PRESS": WorkCenter("WC-PRESS", "Press", D("30.00"), D("48.00"), D("0.20"), "CC-200"),
    "WC-ASSY": WorkCenter("WC-ASSY", "Assy", D("36.00"), D("0.00"), D("0.20"), "CC-300"),
}
ROUTING = RoutingVersion("FG-BRACKET", "A", VersionState.RELEASED, JAN1, None, (
    Operation(10, "WC-LASER", D(0), D("2.0"), D("0.5")),
    Operation(20, "WC-PRESS", D(0), D("1.0"), D("0.3")),
    Operation(30, "WC-ASSY", D(0), D("3.0"), D("0.1"), rework_to=20),
))
BOMS = BomIndex([bom("FG-BRACKET", line("RM-STEEL", "1", op=10), line("RM-BOLT", "4", op=30))])
COSTS = {"RM-STEEL": D("4.00"), "RM-BOLT": D("0.10")}


def routings(*versions: RoutingVersion):
    def lookup(item: str, day: date) -> RoutingVersion | None:
        return next((v for v in versions if v.item == item and v.effective_on(day)), None)
    return lookup


def test_worked_example_rolls_up_to_10_68() -> None:
    result = roll_up("FG-BRACKET", JAN1, D(1), BOMS, routings(ROUTING), CENTERS, COSTS.get)
    assert result.material == D("4.40")
    assert {op: c.total for op, c in result.per_operation.items()} == {10: D("3.10"), 20: D("1.36"), 30: D("1.82")}
    assert (result.labor, result.machine, result.energy) == (D("3.30"), D("2.80"), D("0.18"))
    assert result.total == D("10.68")
    assert result.to_json()["total"] == "10.68"
    assert result.missing_costs == ()


def test_json_money_is_in_cents_and_unit_costs_keep_up_to_six_places() -> None:
    data = roll_up("FG-BRACKET", JAN1, D(1), BOMS, routings(ROUTING), CENTERS, COSTS.get).to_json()
    assert [(m["component"], m["qty_per_unit"], m["unit_cost"], m["amount"]) for m in data["materials"]] == [
        ("RM-STEEL", "1", "4.00", "4.00"), ("RM-BOLT", "4", "0.10", "0.40")]
    assert data["per_operation"]["10"] == {"labor": "1.00", "machine": "2.00", "energy": "0.10", "setup": "0.00",
                                           "total": "3.10"}
    assert data["per_operation"]["30"]["machine"] == "0.00"
    assert (data["material"], data["labor"], data["machine"], data["energy"]) == ("4.40", "3.30", "2.80", "0.18")


def test_a_lot_that_spreads_setup_unevenly_shows_cents_and_six_place_unit_costs() -> None:
    routing = RoutingVersion("FG-BRACKET", "A", VersionState.RELEASED, JAN1, None,
                             (Operation(10, "WC-LASER", D(10), D(2), D(0)), Operation(30, "WC-ASSY", D(0), D(3), D(0))))
    costs = {"RM-STEEL": D("4.1234567"), "RM-BOLT": D("0.1")}
    result = roll_up("FG-BRACKET", JAN1, D(7), BOMS, routings(routing), CENTERS, costs.get)
    assert result.per_operation[10].setup == D("2.142857")  # 10/7 min x 90/h, exact to 6 places
    data = result.to_json()
    assert data["per_operation"]["10"]["setup"] == "2.14"
    assert data["per_operation"]["10"]["labor"] == "1.71"  # (2 + 10/7) min x 30/h = 1.714286
    assert data["materials"][0]["unit_cost"] == "4.123457"
    assert data["materials"][0]["amount"] == "4.12"
    assert data["total"] == money_text(result.total)


@pytest.mark.parametrize(("value", "money", "unit", "qty"), [
    ("4", "4.00", "4.00", "4"), ("0.1", "0.10", "0.10", "0.1"), ("0.10", "0.10", "0.10", "0.1"),
    ("0.005", "0.01", "0.005", "0.005"), ("0.1234565", "0.12", "0.123457", "0.123457"),
    ("-1.5", "-1.50", "-1.50", "-1.5"), ("0", "0.00", "0.00", "0"), ("12.3400000", "12.34", "12.34", "12.34"),
    ("1E+2", "100.00", "100.00", "100"),
])
def test_display_formats(value: str, money: str, unit: str, qty: str) -> None:
    assert (money_text(D(value)), unit_cost_text(D(value)), qty_text(D(value))) == (money, unit, qty)


def test_setup_is_charged_once_per_lot() -> None:
    routing = RoutingVersion("FG-BRACKET", "A", VersionState.RELEASED, JAN1, None,
                             (Operation(10, "WC-LASER", D(20), D(2), D(0)),))
    one = roll_up("FG-BRACKET", JAN1, D(1), BOMS, routings(routing), CENTERS, COSTS.get)
    ten = roll_up("FG-BRACKET", JAN1, D(10), BOMS, routings(routing), CENTERS, COSTS.get)
    assert one.per_operation[10].setup == D(30)  # 20 min x 90/h
    assert ten.per_operation[10].setup == D(3)
    assert ten.per_operation[10].labor == D(2)  # (2 run + 20/10 setup) min x 30/h
    assert ten.per_operation[10].machine == D(4)
    assert ten.total == D("10.40")


def test_made_components_are_rolled_up_recursively_and_missing_costs_are_listed() -> None:
    boms = BomIndex([bom("FG", line("SA", "2", scrap="50", op=10)), bom("SA", line("RM", "1"), line("NEW", "1"))])
    sa_routing = RoutingVersion("SA", "A", VersionState.RELEASED, JAN1, None,
                                (Operation(10, "WC-ASSY", run_min_per_unit=D(1)),))
    result = roll_up("FG", JAN1, D(1), boms, routings(sa_routing), CENTERS, {"RM": D(2)}.get)
    # SA = 2.00 material + 0.60 labor = 2.60; FG needs 3 of them
    assert result.material == D("7.8")
    assert result.materials[0].source == "rollup"
    assert result.missing_costs == ("NEW",)
    assert result.routing_revision is None


def test_roll_up_needs_a_bom_or_a_routing() -> None:
    with pytest.raises(BomError, match="RM-STEEL has no released BOM or routing effective on 2026-01-01"):
        roll_up("RM-STEEL", JAN1, D(1), BOMS, routings(), CENTERS, COSTS.get)


def test_net_requirements_net_each_level_before_exploding_it() -> None:
    boms = BomIndex([bom("FG", line("SA", "2"), line("RM1", "1")), bom("SA", line("RM2", "3", scrap="10"))])
    plan = [PlanRow("FG", D(10), date(2026, 3, 1))]
    reqs = {r.component: r for r in net_requirements(boms, plan, {"FG": D(4), "SA": D(5), "RM2": D(10)},
                                                      {"RM2": D(2)})}
    assert reqs["FG"].net == D(6)
    assert (reqs["SA"].gross, reqs["SA"].net) == (D(12), D(7))
    assert (reqs["RM2"].gross, reqs["RM2"].available, reqs["RM2"].net) == (D("23.1"), D(8), D("15.1"))
    assert (reqs["RM1"].gross, reqs["RM1"].net) == (D(6), D(6))
    assert reqs["SA"].made and not reqs["RM1"].made


def test_stock_is_used_by_the_earliest_due_date_first() -> None:
    boms = BomIndex([bom("FG", line("RM", "1"))])
    plan = [PlanRow("FG", D(5), date(2026, 3, 2)), PlanRow("FG", D(5), date(2026, 3, 1))]
    reqs = {r.component: r for r in net_requirements(boms, plan, {"RM": D(7)}, {})}
    assert reqs["RM"].net == D(3)
    assert reqs["RM"].earliest_due == date(2026, 3, 2)


def test_open_needs_beyond_stock_are_a_shortage_even_without_new_demand_for_them() -> None:
    boms = BomIndex([bom("FG", line("RM", "1"))])
    reqs = net_requirements(boms, [PlanRow("FG", D(1), JAN1)], {"RM": D(2)}, {"RM": D(5)})
    rm = next(r for r in reqs if r.component == "RM")
    assert rm.net == D(4)  # 3 already owed to open orders + 1 for the plan
    assert [r.component for r in shortages(reqs)] == ["FG", "RM"]
    assert to_records([rm])[0] == {"component": "RM", "uom": "pcs", "made": False, "gross": "1", "on_hand": "2",
                                   "open_needs": "5", "available": "-3", "net": "4", "earliest_due": "2026-01-01"}


def test_plan_item_without_a_bom_is_refused() -> None:
    with pytest.raises(BomError, match="plan row 1: no released BOM of X is effective on 2026-01-01"):
        net_requirements(BOMS, [PlanRow("X", D(1), JAN1)], {}, {})


def test_export_csv_and_excel_keep_exact_quantities(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    from bom.planning import COLUMNS, export

    boms = BomIndex([bom("FG", line("RM", "0.333333", scrap="10"))])
    reqs = net_requirements(boms, [PlanRow("FG", D(3), JAN1)], {}, {})
    export(to_records(reqs), COLUMNS, tmp_path / "r.csv", "csv")
    lines = (tmp_path / "r.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "component,uom,made,gross,on_hand,open_needs,available,net,earliest_due"
    assert lines[2] == "RM,pcs,False,1.0999989,0,0,0,1.0999989,2026-01-01"
    export(to_records(reqs, text=False), COLUMNS, tmp_path / "r.xlsx", "xlsx")
    sheet = list(load_workbook(tmp_path / "r.xlsx")["requirements"].values)
    assert sheet[2][0] == "RM" and str(sheet[2][7]) == "1.0999989"
    with pytest.raises(BomError, match="unknown export format 'pdf'"):
        export([], COLUMNS, tmp_path / "r.pdf", "pdf")
