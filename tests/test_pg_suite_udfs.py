"""tests/test_udfs.py, run again on a PostgreSQL store (see pg_server.rerun_on_postgresql).

Left to SQLite: the tests of SQLite's own freshness check (PRAGMA data_version shows another
connection's commit on the very next call; on PostgreSQL the look-up cache lives up to 2 s, as the
README says), of sqlite3's statement trace, and of store locations that are file paths.
"""

import test_udfs
from pg_server import rerun_on_postgresql

_FRESH = "SQLite's data_version: a commit shows on the next call (PostgreSQL: cache of up to 2 s)"
rerun_on_postgresql(globals(), test_udfs, sqlite_only={
    "test_another_connections_commit_is_seen_on_the_next_call": _FRESH,
    "test_dupes_finds_contacts_mobiles_and_skips_deleted": _FRESH,
    "test_next_followup": _FRESH,
    "test_another_processs_commit_is_seen_on_the_next_call": _FRESH,
    "test_lists_and_custom_fields_changed_elsewhere_are_seen": _FRESH,
    "test_a_cache_hit_runs_no_query": "counts statements with sqlite3's trace callback",
    "test_a_miss_is_one_select_by_key": "counts statements with sqlite3's trace callback",
    "test_a_store_that_cannot_be_opened_is_not_retried_on_every_call": "removes the store file",
    "test_the_calling_workbooks_conf_names_the_store_and_language": "the store is a file beside the book",
    "test_an_empty_conf_value_falls_back_to_the_environment": "the store is a file beside the book",
})
