"""Import arrows point one way (STYLE.md): mes_bridge -> wip_costing -> bom, routing, ledger -> mes_common.

Checked statically over every module, so a forbidden import fails here even if nothing executes it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("mes_common", "ledger", "routing", "bom", "wip_costing", "mes_bridge")
# package -> project packages it may import
ALLOWED: dict[str, set[str]] = {
    "mes_common": set(),
    "ledger": {"mes_common"},
    "routing": {"mes_common", "ledger"},
    "bom": {"mes_common", "ledger", "routing"},
    "wip_costing": {"mes_common", "ledger", "routing", "bom"},
    "mes_bridge": {"mes_common", "ledger", "routing", "bom", "wip_costing", "migrations"},
}
# Pure cores: rules and records only. They import no database, web, protocol, dataframe or I/O library, and of the
# project only other pure modules (so nothing impure arrives through them either).
PURE_MODULES = (
    "mes_common/money.py", "mes_common/errors.py", "mes_common/provenance.py", "mes_common/limits.py",
    "ledger/model.py", "ledger/posting.py", "ledger/units.py", "ledger/lots.py",
    "routing/model.py", "routing/versioning.py",
    "bom/model.py", "bom/structure.py", "bom/explosion.py", "bom/rollup.py", "bom/diff.py", "bom/whereused.py",
    "wip_costing/events.py", "wip_costing/model.py", "wip_costing/pools.py", "wip_costing/journal.py",
    "wip_costing/costing.py", "wip_costing/variances.py",
)
HEAVY = {"sqlalchemy", "psycopg", "alembic", "fastapi", "starlette", "httpx", "asyncua", "pymodbus", "pandas",
         "asyncio", "socket", "sqlite3", "subprocess", "threading"}


def _imports(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _modules_imported(path)}


def _modules_imported(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (also inside functions: a late import is still an import)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(package: str) -> list[Path]:
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules, f"package {package} has no modules"
    return modules


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_one_way(package: str) -> None:
    offenders = []
    for path in _modules(package):
        forbidden = (_imports(path) & set(PACKAGES)) - ALLOWED[package] - {package}
        if forbidden:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(forbidden)}")
    assert offenders == []


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_cores_import_no_infrastructure(module: str) -> None:
    path = ROOT / module
    assert _imports(path) & HEAVY == set()
    project = {name for name in _modules_imported(path) if name.split(".")[0] in PACKAGES}
    pure = {m.removesuffix(".py").replace("/", ".") for m in PURE_MODULES}
    assert project - pure == set(), f"{module} imports modules that are not pure"
