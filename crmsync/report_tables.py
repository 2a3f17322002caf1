"""Report tables: what the reports read instead of re-aggregating every customer each time.

At a million customers SQLite spends seconds sorting for each GROUP BY and for each median (it
has no hash aggregate), so the dashboard cannot be computed from the records in the time a manager
waits.  Two small tables are kept in the same transaction as every change (crmsync/tx.py calls in
here), so they are never behind the records:

- ``customer_counts`` (field, value, n): customers not deleted per value of each counted field
  (COUNTED: status, industry, source, level, region = province and city, month created).  The value
  is the stored value as JSON: ``null`` for empty, ``["上海市","上海市"]`` for a region.  Read by
  the admin's summary (reports.customer_summary), which no longer reads the customers at all.
- ``stage_stays``: one row per completed stay in a customer status or a deal stage, appended when
  the status/stage changes, at the moment the audit log records it, with the days spent; its
  ``deleted`` follows the record's.  The medians are read in index order, without a sort.

``rebuild(conn)`` recomputes both from the records and the audit log: migration 6 (stores made
before), ``crmsync report rebuild`` (a store edited by hand), and the tests, which check the kept
tables against a rebuild after every kind of change (``differences``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from operator import itemgetter

import orjson
from sqlalchemy import Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text, text

report_metadata = MetaData()

customer_counts = Table(
    "customer_counts", report_metadata,
    Column("field", String(20), primary_key=True),
    Column("value", Text, primary_key=True),
    Column("n", Integer, nullable=False),
)

stage_stays = Table(
    "stage_stays", report_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entity", String(20), nullable=False),
    Column("record_id", String(32), nullable=False),
    Column("stage", String(40)),
    Column("entered", String(19)),
    Column("left_at", String(19), nullable=False),
    Column("days", Float),
    Column("deleted", Boolean, nullable=False, server_default=text("false")),
)
# the medians: per stage, the stays in order of days (entity and deleted are equalities)
Index("ix_stage_stays_median", stage_stays.c.entity, stage_stays.c.deleted, stage_stays.c.stage, stage_stays.c.days)
# a record's stays: the last one is where the next stay begins; delete and restore flag them
Index("ix_stage_stays_record", stage_stays.c.entity, stage_stays.c.record_id, stage_stays.c.id)

#: The customer fields counted, as (counted name, columns): one column, or several read as a list.
COUNTED = (("status", ("status",)), ("industry", ("industry",)), ("source", ("source",)),
           ("customer_level", ("customer_level",)), ("region", ("province", "city")))
#: Plus "month": the month the customer was created (YYYY-MM of created_at).
COUNTED_COLUMNS = frozenset(c for _, cols in COUNTED for c in cols) | {"created_at"}

#: Which field's changes end a stay, per entity.
STAGE_FIELDS = {"customer": "status", "deal": "stage"}


def tracked_fields(entity: str) -> frozenset[str]:
    """The fields of ``entity`` whose changes the report tables follow."""
    if entity == "customer":
        return COUNTED_COLUMNS | {"status", "deleted"}
    if entity in STAGE_FIELDS:
        return frozenset((STAGE_FIELDS[entity], "deleted"))
    return frozenset()


def value_key(value) -> str:
    """How a counted value is stored: JSON (orjson: compact, UTF-8 as is)."""
    return orjson.dumps(value).decode()


def contribution(row: Mapping) -> list[tuple[str, str]]:
    """The (field, value) counters one customer row adds to."""
    out = [(name, value_key(row.get(cols[0]) if len(cols) == 1 else [row.get(c) for c in cols]))
           for name, cols in COUNTED]
    created = row.get("created_at")
    out.append(("month", value_key(str(created)[:7] if created else None)))
    return out


class Pending:
    """The count changes of one transaction, written at its commit (flush)."""

    def __init__(self) -> None:
        self.deltas: Counter = Counter()

    def add(self, row: Mapping, sign: int) -> None:
        """Count a customer row in (+1) or out (-1); a deleted row counts nowhere."""
        if row.get("deleted"):
            return
        for key in contribution(row):
            self.deltas[key] += sign

    def add_columns(self, cols: list[str], rows: list[tuple]) -> None:
        """Count in many new customer rows given as tuples in column order (create_many): one
        C-level count per counted field (itemgetter), not a Python step per row and field."""
        for name, names in COUNTED:
            counts = Counter(map(itemgetter(*(cols.index(c) for c in names)), rows))
            for value, n in counts.items():
                self.deltas[(name, value_key(list(value) if isinstance(value, tuple) else value))] += n
        for value, n in Counter(map(itemgetter(cols.index("created_at")), rows)).items():
            self.deltas[("month", value_key(str(value)[:7] if value else None))] += n

    def change(self, current: Mapping, diff: Mapping) -> None:
        """A customer update (or delete, restore): out with the old counters, in with the new."""
        if COUNTED_COLUMNS.isdisjoint(diff) and "deleted" not in diff:
            return
        self.add(current, -1)
        self.add({**current, **diff}, +1)

    def flush(self, conn) -> None:
        rows = [{"f": f, "v": v, "d": d} for (f, v), d in self.deltas.items() if d]
        if rows:
            conn.execute(text("INSERT INTO customer_counts (field, value, n) VALUES (:f, :v, :d) "
                              "ON CONFLICT (field, value) DO UPDATE SET n = customer_counts.n + excluded.n"), rows)
        self.deltas.clear()


def _days(entered: str | None, left: str) -> float | None:
    if not entered:
        return None
    return (datetime.fromisoformat(left) - datetime.fromisoformat(str(entered)[:19])).total_seconds() / 86400


def end_stay(conn, entity: str, current: Mapping, left_at: str) -> None:
    """Append the stay that ends now: the record leaves its status/stage in ``current``.  It began
    at the end of the record's previous stay, or at its creation."""
    rid = current[_id_field(entity)]
    entered = conn.execute(text("SELECT left_at FROM stage_stays WHERE entity = :e AND record_id = :r "
                                "ORDER BY id DESC LIMIT 1"), {"e": entity, "r": rid}).scalar()
    entered = entered or current.get("created_at")
    conn.execute(stage_stays.insert().values(
        entity=entity, record_id=rid, stage=current.get(STAGE_FIELDS[entity]), entered=entered,
        left_at=left_at, days=_days(entered, left_at), deleted=bool(current.get("deleted"))))


def set_deleted(conn, entity: str, record_id: str, deleted: bool) -> None:
    conn.execute(stage_stays.update().where((stage_stays.c.entity == entity) & (stage_stays.c.record_id == record_id))
                 .values(deleted=deleted))


def _id_field(entity: str) -> str:
    return "customer_id" if entity == "customer" else "deal_id"


# ---- rebuilding and checking ---------------------------------------------------------------------

def _counted_now(conn) -> Counter:
    cols = sorted(COUNTED_COLUMNS)
    counts: Counter = Counter()
    result = conn.execute(text(f"SELECT {', '.join(cols)} FROM customers WHERE deleted = false"))
    for row in result:
        for key in contribution(dict(zip(cols, row))):
            counts[key] += 1
    return counts


def _stays_now(conn) -> list[tuple]:
    """Every completed stay, from the audit log: each logged status/stage change ends one, which
    began at the change before it, or at the record's creation."""
    out = []
    for entity, field in STAGE_FIELDS.items():
        table, idf = ("customers", "customer_id") if entity == "customer" else ("deals", "deal_id")
        rows = conn.execute(text(
            f"SELECT a.record_id, a.old_value, a.at, LAG(a.at) OVER (PARTITION BY a.record_id ORDER BY a.seq), "
            f"t.created_at, t.deleted FROM audit_log a JOIN {table} t ON t.{idf} = a.record_id "
            f"WHERE a.entity = :e AND a.field = :f AND a.action = 'update' ORDER BY a.seq"), {"e": entity, "f": field})
        for rid, old, at, before, created, deleted in rows:
            entered = before or created
            out.append((entity, rid, orjson.loads(old) if old is not None else None, entered, at,
                        _days(entered, at), bool(deleted)))
    return out


def rebuild(conn) -> tuple[int, int]:
    """Recompute both tables from the records and the audit log; return (counters, stays)."""
    counts = _counted_now(conn)
    conn.execute(customer_counts.delete())
    if counts:
        conn.execute(customer_counts.insert(), [{"field": f, "value": v, "n": n} for (f, v), n in counts.items()])
    stays = _stays_now(conn)
    conn.execute(stage_stays.delete())
    keys = ("entity", "record_id", "stage", "entered", "left_at", "days", "deleted")
    if stays:
        conn.execute(stage_stays.insert(), [dict(zip(keys, s)) for s in stays])
    return len(counts), len(stays)


def differences(conn) -> list[str]:
    """What the kept tables say that a rebuild would not (empty when they agree)."""
    out = []
    kept = {(f, v): n for f, v, n in conn.execute(text("SELECT field, value, n FROM customer_counts WHERE n <> 0"))}
    now = {k: n for k, n in _counted_now(conn).items() if n}
    for key in sorted(set(kept) | set(now)):
        if kept.get(key, 0) != now.get(key, 0):
            out.append(f"customer_counts {key}: kept {kept.get(key, 0)}, records {now.get(key, 0)}")
    kept_stays = sorted(_rounded(r) for r in conn.execute(text(
        "SELECT entity, record_id, stage, entered, left_at, days, deleted FROM stage_stays")))
    now_stays = sorted(_rounded(r) for r in _stays_now(conn))
    if kept_stays != now_stays:
        extra = [s for s in kept_stays if s not in now_stays][:3]
        missing = [s for s in now_stays if s not in kept_stays][:3]
        out.append(f"stage_stays: kept {len(kept_stays)}, audit log {len(now_stays)}; "
                   f"only kept {extra}, only in the log {missing}")
    return out


def _rounded(row: Iterable) -> tuple:
    e, r, s, entered, left, days, deleted = row
    return (e, r, s, entered, left, None if days is None else round(days, 6), bool(deleted))


def create(conn) -> None:
    """Migration 6: the report tables, filled from what the store holds."""
    report_metadata.create_all(conn)
    rebuild(conn)
