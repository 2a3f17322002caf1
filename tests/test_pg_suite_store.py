"""tests/test_store.py, run again on a PostgreSQL store (see pg_server.rerun_on_postgresql).

The audit tests reach into the SQLite file with sqlite3; their backend-neutral twins are in
test_backends.py.
"""

import test_store
from pg_server import rerun_on_postgresql

rerun_on_postgresql(globals(), test_store, sqlite_only={
    "test_migrations_are_recorded_and_missing_columns_come_back": "edits the file with sqlite3",
    "test_opening_a_missing_or_foreign_store_says_so": "about SQLite files",
})
