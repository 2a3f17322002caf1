"""tests/test_import.py, run again on a PostgreSQL store (see pg_server.rerun_on_postgresql)."""

import test_import
from pg_server import rerun_on_postgresql

rerun_on_postgresql(globals(), test_import)
