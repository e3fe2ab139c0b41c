"""``ApiServices``' token cache: a look-up older than ``TOKEN_TTL_S`` is still answered while one background refresh
reads every stale token again; a token revoked elsewhere (another API process) stops working once that refresh
is done, and a look-up older than ``TOKEN_STALE_S`` is never answered from the cache. Also its connection pool:
the connection used last is the one handed out next."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api.services import POOL_SIZE, TOKEN_STALE_S, TOKEN_TTL_S, ApiServices
from mes_bridge.bootstrap import Services
from mes_bridge.tokens import LOOKUP_CHUNK, create_token, find_tokens, revoke_token
from mes_common.settings import Settings


def _age(services: ApiServices, secret: str, seconds: float) -> None:  # float-ok: seconds
    """Pretend the cached look-up of ``secret`` was made ``seconds`` ago."""
    _at, record = services._tokens[secret]
    services._tokens[secret] = (time.monotonic() - seconds, record)


async def test_stale_lookups_are_answered_and_refreshed_in_one_go(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as conn:
        made = [create_token(conn, "terminal", work_centers=("WC-LASER",), name=f"T-{n}") for n in range(3)]
    services = ApiServices(Services(sqlite_engine))
    for secret, _record in made:
        assert services.find_token(secret) is not None
        assert services.cached_token(secret)[0]  # fresh
    with sqlite_engine.begin() as conn:  # revoked by another process: this one's cache does not know
        revoke_token(conn, made[0][1].id)
    for secret, _record in made:
        _age(services, secret, TOKEN_TTL_S + 0.5)
    hit, record = services.cached_token(made[0][0])
    assert hit and record is not None  # stale: still answered, and a refresh started
    refresh = services._refresh
    assert refresh is not None
    await refresh
    assert services.cached_token(made[0][0]) == (True, None)  # refused from now on
    assert [services.cached_token(secret)[1] is not None for secret, _r in made[1:]] == [True, True]
    assert services._refresh is refresh  # every stale token came back fresh: no second refresh

    _age(services, made[1][0], TOKEN_STALE_S)
    assert services.cached_token(made[1][0]) == (False, None)  # too old: the request looks it up itself


@pytest.mark.postgres
def test_requests_one_after_another_reuse_the_connection_used_last(pg_url: str) -> None:
    """The API's pool is LIFO: after warm-up opened all of its connections, reads and writes made one after another
    (a collector posting batch after batch) run on one server process, not in turn on each."""
    services = ApiServices.from_settings(Settings(database_url=pg_url))
    try:
        services.warm_up(POOL_SIZE)
        backends = set()
        for _ in range(POOL_SIZE * 2):
            with services.read() as conn:
                backends.add(conn.scalar(text("SELECT pg_backend_pid()")))
            with services.services.uow() as uow:
                backends.add(uow.conn.scalar(text("SELECT pg_backend_pid()")))
        assert len(backends) == 1, f"{len(backends)} server processes served {POOL_SIZE * 4} requests in turn"
    finally:
        services.close()


def test_many_tokens_are_looked_up_in_one_go_live_revoked_and_unknown(engine: Engine) -> None:
    with engine.begin() as conn:
        made = [create_token(conn, "planner", name=f"P-{n}") for n in range(LOOKUP_CHUNK + 3)]
        revoke_token(conn, made[1][1].id)
    secrets_ = [secret for secret, _r in made] + ["mesb_unknown"]
    with engine.connect() as conn:
        found = find_tokens(conn, secrets_)
    assert list(found) == secrets_
    assert found[made[1][0]] is None and found["mesb_unknown"] is None
    assert [found[secret] for secret, _r in made] == [None if n == 1 else record for n, (_s, record) in enumerate(made)]
