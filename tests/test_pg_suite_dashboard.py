"""tests/test_dashboard.py, run again on a PostgreSQL store (see pg_server.rerun_on_postgresql).

Its fixture is the reports fixture, built in SQLite and moved whole to PostgreSQL as
test_pg_suite_reports.py does.
"""

import test_dashboard
from pg_server import rerun_on_postgresql
import test_pg_suite_reports
from test_pg_suite_reports import _fixture_store  # noqa: F401

rerun_on_postgresql(globals(), test_dashboard, sqlite_only={
    "test_report_workbook_renders_in_libreoffice": "LibreOffice rendering: the same file either way",
})
fx = test_pg_suite_reports.fx  # after the rerun, which copied test_dashboard's own fx
