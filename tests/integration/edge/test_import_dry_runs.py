"""``bom import`` and ``routing import work-centers|operations`` with ``--dry-run``: they say what the import would
change (new versions, superseded ones, unchanged ones, new rate versions) and write nothing; an identical second
import changes nothing and says so (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Table, select
from sqlalchemy.engine import Engine

from bom.tables import bom_lines, bom_versions
from routing.tables import (
    release_generations,
    routing_operations,
    routing_versions,
    work_center_machines,
    work_center_rates,
    work_center_terminals,
    work_centers,
)

from .helpers import cli

TABLES: tuple[Table, ...] = (bom_versions, bom_lines, routing_versions, routing_operations, work_centers,
                             work_center_rates, work_center_machines, work_center_terminals, release_generations)


def written(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the tables a BOM or routing import writes (timestamps included), in a stable order."""
    with engine.connect() as conn:
        return {t.name: sorted((tuple(map(str, row)) for row in conn.execute(select(t))), key=repr) for t in TABLES}


def _master(db_url: str, example_plant: Path) -> None:
    for kind in ("items", "locations"):
        assert cli(db_url, "ledger", "import", kind, str(example_plant / f"{kind}.csv"))[0] == 0


DRY = "(dry run: nothing written)"


def test_work_center_import_dry_run(engine: Engine, db_url: str, example_plant: Path, tmp_path: Path) -> None:
    _master(db_url, example_plant)
    centers = str(example_plant / "work_centers.csv")
    before = written(engine)
    code, out, err = cli(db_url, "routing", "import", "work-centers", centers, "--dry-run")
    assert (code, err) == (0, "")
    assert out.splitlines()[:4] == [
        f"imported 3 work center(s): WC-LASER, WC-PRESS, WC-ASSY; 0 unchanged {DRY}",
        "  work center WC-LASER: new", "  work center WC-PRESS: new", "  work center WC-ASSY: new"]
    assert written(engine) == before
    assert cli(db_url, "routing", "import", "work-centers", centers)[1] == out.replace(f" {DRY}", "")
    imported = written(engine)
    assert imported != before
    assert cli(db_url, "routing", "import", "work-centers", centers, "--dry-run") == (
        0, f"imported 0 work center(s): ; 3 unchanged {DRY}\n", "")
    assert cli(db_url, "routing", "import", "work-centers", centers) == (
        0, "imported 0 work center(s): ; 3 unchanged\n", "")
    assert written(engine) == imported
    dearer = tmp_path / "wc.csv"
    dearer.write_text("code,name,labor_rate,machine_rate,energy_tariff,cost_center\n"
                      "WC-LASER,Laser cutting,40.00,60.00,0.20,CC-100\nWC-PRESS,Press brake,30.00,48.00,0.20,CC-200\n")
    assert cli(db_url, "routing", "import", "work-centers", str(dearer), "--date", "2026-12-01", "--dry-run") == (
        0, f"imported 1 work center(s): WC-LASER; 1 unchanged {DRY}\n"
           "  work center WC-LASER: rates from 2026-12-01: labor 30 -> 40, machine 60, energy 0.2 (orders released "
           "before keep theirs)\n", "")
    assert written(engine) == imported
    # A refused dry run: exit 1 with the reason, nothing written.
    cli(db_url, "routing", "import", "work-centers", str(dearer), "--date", "2026-12-01")
    changed = written(engine)
    dearer.write_text(dearer.read_text().replace("40.00", "45.00"))
    code, out, err = cli(db_url, "routing", "import", "work-centers", str(dearer), "--date", "2026-12-01",
                         "--dry-run")
    assert (code, out) == (1, "")
    assert "wc.csv: row 1: work center WC-LASER: rates from 2026-12-01 are already labor 40" in err
    assert written(engine) == changed


def test_operations_import_dry_run(engine: Engine, db_url: str, example_plant: Path, tmp_path: Path) -> None:
    _master(db_url, example_plant)
    assert cli(db_url, "routing", "import", "work-centers", str(example_plant / "work_centers.csv"))[0] == 0
    operations = str(example_plant / "operations.csv")
    before = written(engine)
    assert cli(db_url, "routing", "import", "operations", operations, "--dry-run") == (
        0, f"released routing FG-BRACKET rev A\n1 to release, 0 superseded, 0 unchanged {DRY}\n", "")
    assert written(engine) == before
    assert cli(db_url, "routing", "import", "operations", operations) == (0, "released routing FG-BRACKET rev A\n", "")
    imported = written(engine)
    assert imported != before
    assert cli(db_url, "routing", "import", "operations", operations) == (
        0, "unchanged routing FG-BRACKET rev A (already released, identical)\n", "")
    assert cli(db_url, "routing", "import", "operations", operations, "--dry-run") == (
        0, f"unchanged routing FG-BRACKET rev A (already released, identical)\n0 to release, 0 superseded, 1 "
           f"unchanged {DRY}\n", "")
    assert written(engine) == imported
    rev_b = tmp_path / "operations-b.csv"
    rev_b.write_text(Path(operations).read_text().replace(",A,2026-01-01,", ",B,2026-12-01,").replace("2.0,", "1.5,"))
    assert cli(db_url, "routing", "import", "operations", str(rev_b), "--supersede", "--dry-run") == (
        0, "released routing FG-BRACKET rev B\nsuperseded routing FG-BRACKET rev A: valid to 2026-11-30\n"
           f"1 to release, 1 superseded, 0 unchanged {DRY}\n", "")
    assert written(engine) == imported
    code, out, err = cli(db_url, "routing", "import", "operations", str(rev_b), "--dry-run")
    assert (code, out) == (1, "")
    assert "operations-b.csv: row 2, column revision: routing FG-BRACKET rev B" in err
    assert written(engine) == imported
    assert cli(db_url, "routing", "import", "operations", str(rev_b), "--supersede") == (
        0, "released routing FG-BRACKET rev B\nsuperseded routing FG-BRACKET rev A: valid to 2026-11-30\n", "")


def test_bom_import_dry_run(engine: Engine, db_url: str, example_plant: Path, tmp_path: Path) -> None:
    _master(db_url, example_plant)
    for kind in ("work-centers", "operations"):
        assert cli(db_url, "routing", "import", kind, str(example_plant / f"{kind.replace('-', '_')}.csv"))[0] == 0
    bom = str(example_plant / "bom.csv")
    before = written(engine)
    assert cli(db_url, "bom", "import", bom, "--dry-run") == (
        0, f"released BOM FG-BRACKET rev A\n1 to release, 0 superseded, 0 unchanged {DRY}\n", "")
    assert written(engine) == before
    assert cli(db_url, "bom", "import", bom) == (0, "released BOM FG-BRACKET rev A\n", "")
    imported = written(engine)
    assert imported != before
    assert cli(db_url, "bom", "import", bom) == (0, "unchanged BOM FG-BRACKET rev A (already released, identical)\n",
                                                 "")
    assert cli(db_url, "bom", "import", bom, "--dry-run") == (
        0, f"unchanged BOM FG-BRACKET rev A (already released, identical)\n0 to release, 0 superseded, 1 unchanged "
           f"{DRY}\n", "")
    assert written(engine) == imported
    rev_b = tmp_path / "bom-b.csv"
    rev_b.write_text(Path(bom).read_text().replace(",A,2026-01-01,", ",B,2026-12-01,").replace(",4,pcs", ",6,pcs"))
    assert cli(db_url, "bom", "import", str(rev_b), "--supersede", "--dry-run") == (
        0, "released BOM FG-BRACKET rev B\nsuperseded BOM FG-BRACKET rev A: valid to 2026-11-30\n"
           f"1 to release, 1 superseded, 0 unchanged {DRY}\n", "")
    assert written(engine) == imported
    code, out, err = cli(db_url, "bom", "import", str(rev_b), "--dry-run")
    assert (code, out) == (1, "")
    assert "bom-b.csv: row 2, column revision: BOM FG-BRACKET rev B" in err
    assert written(engine) == imported
    assert cli(db_url, "bom", "import", str(rev_b), "--supersede") == (
        0, "released BOM FG-BRACKET rev B\nsuperseded BOM FG-BRACKET rev A: valid to 2026-11-30\n", "")
    assert cli(db_url, "bom", "import", str(rev_b), "--supersede") == (
        0, "unchanged BOM FG-BRACKET rev B (already released, identical)\n", "")
