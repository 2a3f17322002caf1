"""tests/test_sync_incoming.py, run again on a PostgreSQL store (see pg_server.rerun_on_postgresql)."""

import test_sync_incoming
from pg_server import rerun_on_postgresql

rerun_on_postgresql(globals(), test_sync_incoming)
