"""Database fixtures shared by every test layer.

PostgreSQL: ``MES_BRIDGE_TEST_PG_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``)
is an admin connection; the session migrates a template database, every test gets a fresh copy of it (dropped
after the test), and the template is dropped at the end.
When no server is reachable the PostgreSQL tests are skipped with the reason, except in CI
(``CI=true``) or with ``MES_BRIDGE_REQUIRE_PG=1``, where they fail loudly.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from mes_bridge import schema
from mes_common.db import make_engine

PG_ADMIN_URL = os.environ.get("MES_BRIDGE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REQUIRE_PG = os.environ.get("CI", "").lower() == "true" or os.environ.get("MES_BRIDGE_REQUIRE_PG") == "1"


def _pg_unavailable(reason: str) -> None:
    if REQUIRE_PG:
        pytest.fail(f"PostgreSQL is required here (CI) but unusable: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not reachable at {make_url(PG_ADMIN_URL).render_as_string()}: {reason}")


_DROP_DATABASES = """
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    for name in sys.argv[2:]:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
"""


class PgDatabases:
    """Fresh PostgreSQL databases for tests, each a copy of one migrated template database (``CREATE DATABASE ...
    TEMPLATE``: a file copy, much faster than migrating). Tests never empty a database in place: the append-only
    tables refuse TRUNCATE as they refuse DELETE."""

    def __init__(self, admin: Engine, template: str) -> None:
        self.admin = admin
        self.template = template
        # Dropping a database waits for a checkpoint: done by a thread, so a test's teardown does not wait for it.
        self._doomed: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._dropper = threading.Thread(target=self._drop_queued, name="test database dropper", daemon=True)
        self._dropper.start()

    def create(self) -> str:
        """URL of a new database with the schema at head (drop it with ``drop``)."""
        name = f"mesb_test_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"'))
        return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        """Drop the database of ``url`` soon (its connections are ended by the drop)."""
        name = make_url(url).database
        assert name is not None
        self._doomed.put(name)

    def close(self) -> None:
        """Drop what is still queued and the template: in a process of their own, which the session does not wait
        for (each drop waits for a checkpoint of the whole server)."""
        self._closing.set()
        self._doomed.put(None)
        self._dropper.join()  # after the drop under way, if any
        left = [self.template]
        while not self._doomed.empty():
            name = self._doomed.get()
            if name is not None:
                left.append(name)
        dsn = make_url(PG_ADMIN_URL).set(drivername="postgresql").render_as_string(hide_password=False)
        subprocess.Popen([sys.executable, "-c", _DROP_DATABASES, dsn, *left], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _drop_queued(self) -> None:
        # Stops when the session closes; what is still queued is left to ``close``.
        while (name := self._doomed.get()) is not None:
            if self._closing.is_set():
                self._doomed.put(name)
                return
            self._drop_now(name)

    def _drop_now(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    """This session's migrated template database, from which every PostgreSQL test gets a fresh copy."""
    admin = make_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=False)
    template = f"mesb_tpl_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{template}"'))
    except Exception as exc:  # any failure to reach or use the server
        admin.dispose()
        _pg_unavailable(str(exc).splitlines()[0])
    engine = make_engine(make_url(PG_ADMIN_URL).set(database=template).render_as_string(hide_password=False))
    schema.upgrade(engine)
    engine.dispose()  # a template must have no connections while it is copied
    databases = PgDatabases(admin, template)
    yield databases
    databases.close()
    admin.dispose()


@pytest.fixture
def new_pg_url(pg_databases: PgDatabases) -> Iterator[Callable[[], str]]:
    """Call it for another fresh database (with the schema at head) within one test; all are dropped after it."""
    made: list[str] = []

    def new() -> str:
        made.append(pg_databases.create())
        return made[-1]

    yield new
    for url in made:
        pg_databases.drop(url)


@pytest.fixture
def pg_url(new_pg_url: Callable[[], str]) -> str:
    """URL of a fresh PostgreSQL database with the schema upgraded to head, for this test."""
    return new_pg_url()


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """An engine on this test's fresh PostgreSQL database."""
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite+pysqlite:///{path}")
    schema.upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """URL of a fresh SQLite file with the schema at head (copied from a migrated template)."""
    path = tmp_path / "mes-bridge.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+pysqlite:///{path}"


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_engine")
    else:
        yield request.getfixturevalue("pg_engine")


@pytest.fixture
def db_url(engine: Engine) -> str:
    """URL of ``engine``'s database (for CLI and subprocess tests), with the password kept."""
    return engine.url.render_as_string(hide_password=False)


EXAMPLE_PLANT = Path(__file__).resolve().parent.parent / "mes_bridge" / "example_plant"


@pytest.fixture
def example_plant() -> Path:
    """Folder of SPEC.md's worked-example CSV and JSONL files."""
    return EXAMPLE_PLANT


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow (CI always does)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow") or os.environ.get("CI", "").lower() == "true":
        return
    skip = pytest.mark.skip(reason="slow test: runs in CI, or locally with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
