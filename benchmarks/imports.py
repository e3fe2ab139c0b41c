"""Rows per second of the streamed CSV imports (``ledger import items`` and ``ledger import balances``) of large
files, beside a plain load of the same rows in the same run, with each run's peak memory.

Each measurement runs in a fresh child process (so its peak resident memory, ``ru_maxrss``, is its own), on
SQLite (a temp file) and on PostgreSQL (a throw-away database created and dropped here):

- ``items``: ``mes_bridge``'s ``import_items`` of an N-row items file (validation of every cell, staging in
  chunks, duplicate and master-data checks set-based, insert);
- ``balances``: ``import_balances`` of an N-row opening-balances file, one row per item (unknown codes, units,
  earlier openings, then the receipts, balances and lots);
- baseline: the same rows read with ``csv.reader`` and loaded into a plain table of the same columns with COPY
  (PostgreSQL) or ``executemany`` in chunks (SQLite), no validation.

Peak memory is printed for N and N/10 rows: a streamed import's peak should not grow with the file. Run:

    python benchmarks/imports.py [--rows 1000000] [--pg postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def write_files(folder: Path, rows: int) -> tuple[Path, Path]:
    items, balances = folder / f"items-{rows}.csv", folder / f"balances-{rows}.csv"
    with items.open("w") as f:
        f.write("code,name,uom,kind\n")
        f.writelines(f"IT-{n:07d},Item number {n},pcs,raw\n" for n in range(rows))
    with balances.open("w") as f:
        f.write("item,location,lot,qty,unit_cost\n")
        f.writelines(f"IT-{n:07d},STORES,,{n % 997 + 1},{n % 89 + 1}.25\n" for n in range(rows))
    return items, balances


def child(url: str, what: str, path: str) -> dict[str, float]:
    """One measurement in this (child) process: seconds and peak memory."""
    from ledger import importer
    from ledger.model import Location, LocationKind
    from ledger.repository import add_locations
    from mes_common.db import is_postgres, make_engine

    engine = make_engine(url)
    start = time.perf_counter()
    with engine.begin() as conn:
        if what == "items":
            importer.import_items(conn, Path(path), actor="bench")
        elif what == "balances":
            if not conn.exec_driver_sql("SELECT 1 FROM locations WHERE code = 'STORES'").first():
                add_locations(conn, [Location("STORES", "Stores", LocationKind.STORES)])
            importer.import_balances(conn, Path(path), actor="bench")
        else:  # the baseline: plain rows into a plain table
            with open(path, newline="") as f:
                reader = csv.reader(f)
                header = next(reader)
                cols = ", ".join(f"{name} VARCHAR(200)" for name in header)
                conn.exec_driver_sql(f"CREATE TABLE plain_{what} ({cols})")
                if is_postgres(conn):
                    raw = conn.connection.driver_connection
                    with raw.cursor() as cur, cur.copy(f"COPY plain_{what} FROM STDIN") as copy:  # type: ignore[union-attr]
                        for row in reader:
                            copy.write_row(row)
                else:
                    marks = ", ".join("?" * len(header))
                    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
                    chunk: list[list[str]] = []
                    for row in reader:
                        chunk.append(row)
                        if len(chunk) == 10_000:
                            cursor.executemany(f"INSERT INTO plain_{what} VALUES ({marks})", chunk)
                            chunk = []
                    cursor.executemany(f"INSERT INTO plain_{what} VALUES ({marks})", chunk)
    seconds = time.perf_counter() - start
    engine.dispose()
    return {"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(url: str, what: str, path: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--child", url, what, str(path)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def fresh_databases(pg_admin: str | None, folder: Path) -> list[tuple[str, str, str | None]]:
    """(label, url, database to drop) of an empty migrated SQLite file and PostgreSQL database."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from mes_bridge import schema
    from mes_common.db import make_engine

    found: list[tuple[str, str, str | None]] = []
    sqlite_url = f"sqlite+pysqlite:///{folder / f'bench-{uuid.uuid4().hex[:6]}.db'}"
    found.append(("SQLite", sqlite_url, None))
    if pg_admin:
        name = f"mesb_bench_{uuid.uuid4().hex[:8]}"
        admin = make_engine(pg_admin, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        found.append(("PostgreSQL", make_url(pg_admin).set(database=name).render_as_string(hide_password=False),
                      name))
    for _, url, _ in found:
        engine = make_engine(url)
        schema.upgrade(engine)
        engine.dispose()
    return found


def drop(pg_admin: str, name: str) -> None:
    from sqlalchemy import text

    from mes_common.db import make_engine

    admin = make_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pg", default=PG_DEFAULT)
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    sqlite3.connect(":memory:").close()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"{args.rows:,} rows; each figure in a fresh process (peak = its max resident memory)")
        print(f"{'database':<11} {'import':<9} {'rows':>9} {'ours rows/s':>12} {'plain rows/s':>13} {'ratio':>6} "
              f"{'peak MB':>8}")
        for rows in (args.rows // 10, args.rows):
            items, balances = write_files(folder, rows)
            for label, url, name in fresh_databases(None if args.no_pg else args.pg, folder):
                try:
                    for what, path in (("items", items), ("balances", balances)):
                        ours = measure(url, what, path)
                        plain = measure(url, f"{what}_{rows}", path)
                        rate, base = rows / ours["seconds"], rows / plain["seconds"]
                        print(f"{label:<11} {what:<9} {rows:>9,} {rate:>12,.0f} {base:>13,.0f} {rate / base:>6.2f} "
                              f"{ours['peak_mb']:>8.0f}", flush=True)
                finally:
                    if name is not None:
                        drop(args.pg, name)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3], sys.argv[4])))
    else:
        main()
