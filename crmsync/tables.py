"""The store's tables, derived from schema.py, and the numbered migrations that create them.

Entity tables get one column per stored field plus ``custom_data`` (JSON of admin-defined fields).
The rest are the store's own tables: users, teams, roles, enumerations, custom field definitions,
settings, the per-day ID counters, and the append-only audit log with its chain head.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (Boolean, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table,
                        Text, func, inspect, text)

from . import clock
from .schema import CUSTOM_DATA_KEY, ENTITIES, Entity, Field

metadata = MetaData()

_SQL_TYPES = {
    "int": Integer, "money": Float, "bool": Boolean,
    "date": lambda: String(10), "datetime": lambda: String(19),
    "id": lambda: String(32), "ref": lambda: String(32), "enum": lambda: String(40),
    "user": lambda: String(80), "team": lambda: String(80),
}


def column_for(ent: Entity, f: Field) -> Column:
    """Return the store column of a field (the id field is the primary key)."""
    sql_type = _SQL_TYPES.get(f.type, Text)
    args = []
    if f.type == "ref" and f.ref:
        target = ENTITIES[f.ref]
        args.append(ForeignKey(f"{target.table}.{target.id_field}"))
    if f.key == ent.id_field:
        return Column(f.key, sql_type(), primary_key=True)
    if f.key == "version":
        return Column(f.key, Integer, nullable=False, server_default=text("1"))
    if f.key == "deleted":
        return Column(f.key, Boolean, nullable=False, server_default=text("false"))
    return Column(f.key, sql_type(), *args)


def _entity_table(ent: Entity) -> Table:
    cols = [column_for(ent, f) for f in ent.stored]
    cols.append(Column(CUSTOM_DATA_KEY, Text))
    table = Table(ent.table, metadata, *cols)
    # Only the look-ups the product makes on every call: children by customer, a user's customers
    # and their due follow-ups (reminders), a team's customers.  Every index costs on bulk inserts.
    for f in ent.stored:
        if f.type == "ref":
            Index(f"ix_{ent.table}_{f.key}", table.c[f.key])
    if ent.key == "customer":
        Index("ix_customers_owner_next", table.c.owner, table.c.next_follow_up)
        Index("ix_customers_team", table.c.team)
    if ent.key == "followup":
        Index("ix_followups_user_next", table.c.user, table.c.next_time)
    return table


ENTITY_TABLES: dict[str, Table] = {key: _entity_table(ent) for key, ent in ENTITIES.items()}

users = Table(
    "users", metadata,
    Column("name", String(80), primary_key=True),
    Column("role", String(20), nullable=False),
    Column("team", String(80)),
    Column("display_name", Text),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", String(19)),
)
teams = Table(
    "teams", metadata,
    Column("name", String(80), primary_key=True),
    Column("created_at", String(19)),
)
roles = Table(
    "roles", metadata,
    Column("key", String(20), primary_key=True),
    Column("zh", Text, nullable=False),
    Column("en", Text, nullable=False),
)
enums = Table(
    "enums", metadata,
    Column("list_key", String(40), primary_key=True),
    Column("key", String(40), primary_key=True),
    Column("zh", Text, nullable=False),
    Column("en", Text, nullable=False),
    Column("sort", Integer, nullable=False, server_default=text("0")),
    Column("synonyms", Text),
    Column("active", Boolean, nullable=False, server_default=text("true")),
)
custom_fields = Table(
    "custom_fields", metadata,
    Column("entity", String(20), primary_key=True),
    Column("key", String(40), primary_key=True),
    Column("zh", Text, nullable=False),
    Column("en", Text, nullable=False),
    Column("type", String(20), nullable=False),
    Column("enum", String(40)),
    Column("required", Boolean, nullable=False, server_default=text("false")),
    Column("sensitive", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", String(19)),
)
settings = Table(
    "settings", metadata,
    Column("key", String(60), primary_key=True),
    Column("value", Text),  # JSON
)
id_counters = Table(
    "id_counters", metadata,
    Column("prefix", String(4), primary_key=True),
    Column("day", String(8), primary_key=True),
    Column("last_serial", Integer, nullable=False),
)
audit_log = Table(
    "audit_log", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(19), nullable=False),
    Column("user", String(80)),
    Column("source", Text),
    Column("action", String(20), nullable=False),
    Column("entity", String(20)),
    Column("record_id", String(32)),
    Column("version", Integer),
    Column("field", String(60)),
    Column("old_value", Text),  # JSON
    Column("new_value", Text),  # JSON
    Column("reason", Text),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_audit_record", audit_log.c.entity, audit_log.c.record_id, audit_log.c.seq)
audit_head = Table(  # the chain's last link, one row: writers lock it, and truncation shows
    "audit_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)
schema_migrations = Table(
    "schema_migrations", metadata,
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("applied_at", String(19), nullable=False),
)

GENESIS_HASH = "0" * 64


# ---- migrations ----------------------------------------------------------------------------------

def _m1_initial(conn) -> None:
    """Create every table of this module."""
    metadata.create_all(conn)
    conn.execute(audit_head.insert().values(id=1, seq=0, hash=GENESIS_HASH))


#: Numbered migrations, applied in order, each recorded in schema_migrations.  Append; never edit.
MIGRATIONS: list[tuple[int, str, Callable]] = [
    (1, "initial tables", _m1_initial),
]


def add_missing_columns(conn) -> list[str]:
    """Add columns for fields added to schema.py since the store was created; return their names.

    Additive field changes need no hand-written migration: the column follows the schema.
    """
    added = []
    insp = inspect(conn)
    for key, table in ENTITY_TABLES.items():
        have = {c["name"] for c in insp.get_columns(table.name)}
        for col in table.columns:
            if col.name not in have:
                ddl = col.type.compile(dialect=conn.dialect)
                conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{col.name}" {ddl}')
                added.append(f"{table.name}.{col.name}")
    return added


def migrate(conn) -> list[int]:
    """Apply every migration not yet recorded; return the numbers applied."""
    insp = inspect(conn)
    applied: set[int] = set()
    if insp.has_table("schema_migrations"):
        applied = {r[0] for r in conn.execute(schema_migrations.select().with_only_columns(
            schema_migrations.c.number))}
    done = []
    for number, name, fn in MIGRATIONS:
        if number in applied:
            continue
        fn(conn)
        conn.execute(schema_migrations.insert().values(number=number, name=name,
                                                       applied_at=clock.now_text()))
        done.append(number)
    add_missing_columns(conn)
    return done


# ---- report look-ups (reports.py): stage changes the audit log stamps, follow-ups by time --------
# Two small partial indexes covering what the funnel reports read (who, when, from, to), so median
# days per stage never scan the whole log; follow-ups by time; the remindable dates.  New stores get
# them from create_all (above), older ones from migration 2.
REPORT_INDEXES = (
    # entity and field lead (constant here) so that the planner, comparing equalities, prefers this
    # covering index to ix_audit_record for the queries that name both
    Index("ix_audit_customer_status", audit_log.c.entity, audit_log.c.field, audit_log.c.record_id,
          audit_log.c.seq, audit_log.c.action, audit_log.c.at, audit_log.c.old_value, audit_log.c.new_value,
          sqlite_where=text("entity = 'customer' AND field = 'status'"),
          postgresql_where=text("entity = 'customer' AND field = 'status'")),
    Index("ix_audit_deal_stage", audit_log.c.entity, audit_log.c.field, audit_log.c.record_id,
          audit_log.c.seq, audit_log.c.action, audit_log.c.at, audit_log.c.old_value, audit_log.c.new_value,
          sqlite_where=text("entity = 'deal' AND field = 'stage'"),
          postgresql_where=text("entity = 'deal' AND field = 'stage'")),
    # follow-ups by time, covering what activity per owner and contact frequency read
    Index("ix_followups_time", ENTITY_TABLES["followup"].c.follow_time, ENTITY_TABLES["followup"].c.user,
          ENTITY_TABLES["followup"].c.customer_id, ENTITY_TABLES["followup"].c.deleted),
    # remindable dates (reminders): contract ends by date, birthdays by month and day
    Index("ix_deals_contract_end", ENTITY_TABLES["deal"].c.contract_end),
    Index("ix_contacts_birthday_md", func.substr(ENTITY_TABLES["contact"].c.birthday, 6, 5)),
)


def _m2_report_indexes(conn) -> None:
    """The report indexes (REPORT_INDEXES) on a store created before them."""
    from sqlalchemy.schema import CreateIndex

    for index in REPORT_INDEXES:  # IF NOT EXISTS: the inspector does not list expression indexes
        conn.execute(CreateIndex(index, if_not_exists=True))


MIGRATIONS.append((2, "report indexes: stage changes, follow-ups by time, remindable dates", _m2_report_indexes))


# ---- migration 3: what sync keeps about each workbook copy (crmsync/sync_apply.py) ---------------

sync_metadata = MetaData()

#: The store's record of each new row a copy sent: (copy, sheet entity, client key) → the record it
#: became.  A row with no key (typed where macros do not run) is remembered by its content
#: (values, digest) and position, so the next ingestion of the same copy finds it again.
sync_keys = Table(
    "sync_keys", sync_metadata,
    Column("copy_id", Text, primary_key=True),
    Column("entity", String(20), primary_key=True),
    Column("client_key", String(64), primary_key=True),
    Column("record_id", String(32), nullable=False),
    Column("version", Integer, nullable=False),  # the version the copy row now stands for
    Column("digest", String(32)),  # of the row's values as last seen (keyless rows)
    Column("row_number", Integer),  # the Excel row it was last seen at
    Column("row_values", Text),  # JSON: the row's values as last seen, for similarity matching
    Column("keyless", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", String(19), nullable=False),
)
Index("ix_sync_keys_record", sync_keys.c.copy_id, sync_keys.c.entity, sync_keys.c.record_id)

#: What each copy's row of each record looked like at its last sync (or checkout): the digest of
#: its values and the store version it stands for.  A row whose digest and version still match
#: is unchanged on both sides and costs one hash and one dict look-up.
sync_rows = Table(
    "sync_rows", sync_metadata,
    Column("copy_id", Text, primary_key=True),
    Column("entity", String(20), primary_key=True),
    Column("record_id", String(32), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("digest", String(32), nullable=False),
)

#: Conflicts kept for a manager: both values, both users, both times, the copy.
sync_conflicts = Table(
    "sync_conflicts", sync_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entity", String(20), nullable=False),
    Column("record_id", String(32), nullable=False),
    Column("field", String(60), nullable=False),
    Column("base_value", Text),  # JSON
    Column("local_value", Text),  # JSON: the copy's value ("mine")
    Column("store_value", Text),  # JSON: the store's value when the conflict arose ("theirs")
    Column("base_version", Integer),
    Column("store_version", Integer),
    Column("local_user", String(80)),
    Column("local_time", String(19)),
    Column("store_user", String(80)),
    Column("store_time", String(19)),
    Column("copy_id", Text),
    Column("sheet_row", Integer),
    Column("status", String(12), nullable=False, server_default=text("'open'")),  # open | resolved
    Column("resolution", Text),  # JSON: {"take": "mine"|"theirs"|"value", "value": …}
    Column("resolved_by", String(80)),
    Column("resolved_at", String(19)),
)
Index("ix_sync_conflicts_record", sync_conflicts.c.entity, sync_conflicts.c.record_id, sync_conflicts.c.status)


def _m3_sync(conn) -> None:
    """Create the sync tables (client keys, row digests, conflicts); checkfirst, so re-running is safe."""
    sync_metadata.create_all(conn)


MIGRATIONS.append((3, "sync: client keys, row digests, conflicts", _m3_sync))


def _m4_merges(conn) -> None:
    """Create the merges table (crmsync.merge: what each merge changed, so unmerge can undo it)."""
    from .merge import merges_table

    merges_table.create(conn, checkfirst=True)


# 4, not 3: number 3 was taken by the sync tables while this was written.
MIGRATIONS.append((4, "merges: what each customer merge changed", _m4_merges))


# ---- migration 5: report look-ups read narrow covering indexes -----------------------------------
# (crmsync/reports.py).  Only on follow-ups and deals: covering indexes on the customers made the
# summary scans several times faster but cost ~30% on every bulk customer insert (an import, a
# checkout's sync) — measured with bench_store.py — and imports are the path users wait on.
REPORT_INDEXES = (
    # one customer's follow-ups in a time window (contact frequency of the segments)
    Index("ix_followups_customer_time", *(ENTITY_TABLES["followup"].c[k] for k in ("customer_id", "follow_time", "deleted"))),
    # deal-stage changes joined to their deal (deal stage medians)
    Index("ix_deals_id_report", *(ENTITY_TABLES["deal"].c[k] for k in ("deal_id", "deleted", "created_at", "customer_id"))),
)


def _m5_customer_report_indexes(conn) -> None:
    """The covering indexes of the report look-ups (REPORT_INDEXES) on an older store."""
    from sqlalchemy.schema import CreateIndex

    for index in REPORT_INDEXES:
        conn.execute(CreateIndex(index, if_not_exists=True))


MIGRATIONS.append((5, "report covering indexes: follow-ups per customer, deals by id",
                   _m5_customer_report_indexes))


# ---- migration 6: the report tables (crmsync/report_tables.py) ---------------------------------

def _m6_report_tables(conn) -> None:
    """Customer counters and stage stays, filled from the records and the audit log."""
    from . import report_tables

    report_tables.create(conn)


MIGRATIONS.append((6, "report tables: customer counters, stage stays", _m6_report_tables))
