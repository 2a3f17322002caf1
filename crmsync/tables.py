"""The store's tables, derived from schema.py, and the numbered migrations that create them.

Entity tables get one column per stored field plus ``custom_data`` (JSON of admin-defined fields).
The rest are the store's own tables: users, teams, roles, enumerations, custom field definitions,
settings, the per-day ID counters, and the append-only audit log with its chain head.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (Boolean, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table,
                        Text, inspect, text)

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
