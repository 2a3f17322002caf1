"""Small fixtures: a real SQLite store in a temp folder, a fixed clock, users of each role."""

from __future__ import annotations

import os

import pytest

pytest_plugins = [
    "fake_excel",  # the xlwings engine over files that stands in for Excel
    "workbook_fixtures",  # copies of real workbooks; LibreOffice or skip
    "pg_server",  # a real PostgreSQL server for the session, or skip
]

os.environ.pop("XLWINGS_LICENSE_KEY", None)  # would silently switch on xlwings' paid engines
os.environ.pop("CRMSYNC_STORE", None)
os.environ.pop("CRMSYNC_USER", None)
os.environ.pop("CRMSYNC_LANG", None)


@pytest.fixture(autouse=True)
def _fixed_clock_and_lang():
    from crmsync import clock, i18n

    clock.set_now("2024-05-21 10:00:00")
    i18n.set_lang(None)
    yield
    clock.set_now(None)
    i18n.set_lang(None)


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "crm.db"


@pytest.fixture
def store(store_path):
    from crmsync.store import Store

    s = Store(store_path, create=True)
    yield s
    s.close()


@pytest.fixture
def team_store(store):
    """A store with two teams: manager wang + reps zhang, li (east); manager chen + rep liu (south)."""
    store.add_user("wang", "manager", "east")
    store.add_user("zhang", "rep", "east")
    store.add_user("li", "rep", "east")
    store.add_user("chen", "manager", "south")
    store.add_user("liu", "rep", "south")
    return store
