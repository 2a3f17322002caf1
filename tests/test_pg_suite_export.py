"""tests/test_export.py, run again on a PostgreSQL store (see pg_server.rerun_on_postgresql)."""

import test_export
from pg_server import rerun_on_postgresql

rerun_on_postgresql(globals(), test_export, sqlite_only={
    # its own check reads `SELECT user FROM audit_log`: in PostgreSQL a bare `user` is CURRENT_USER
    "test_scope_and_audit": "test SQL names the user column unquoted",
})
