"""tests/test_reports.py, run again on a PostgreSQL store (see pg_server.rerun_on_postgresql).

The reports fixture writes its back-dated history with SQLite SQL, so it is built in an SQLite
store exactly as test_reports.py builds it and then moved whole (migrate-store) to PostgreSQL:
the reports must give the same figures there.
"""

import pytest

import test_reports
from pg_server import rerun_on_postgresql
from test_reports_fixture import build_fixture

rerun_on_postgresql(globals(), test_reports)


@pytest.fixture(scope="module")
def _fixture_store(tmp_path_factory):
    """The SQLite store of the reports fixture, built once (at the tests' fixed clock)."""
    from crmsync import clock
    from crmsync.store import Store

    path = tmp_path_factory.mktemp("reports") / "fixture.db"
    before = clock._fixed
    clock.set_now("2024-05-21 10:00:00")
    with Store(path, create=True) as s:
        for name, role, team in (("wang", "manager", "east"), ("zhang", "rep", "east"), ("li", "rep", "east"),
                                 ("chen", "manager", "south"), ("liu", "rep", "south")):
            s.add_user(name, role, team)  # conftest's team_store
        ids = build_fixture(s)
    clock.set_now(before)
    return path, ids


@pytest.fixture
def fx(_fixture_store, pg_store_url):
    from crmsync.migrate_store import move_store
    from crmsync.store import Store

    path, ids = _fixture_store
    move_store(path, pg_store_url, replace=True)
    store = Store(pg_store_url)
    yield store, dict(ids)
    store.close()
