"""Report tables: what the reports read instead of re-aggregating every customer each time.

At a million customers SQLite spends seconds sorting for each GROUP BY and for each median (it
has no hash aggregate), so the dashboard cannot be computed from the records in the time a manager
waits.  Two small tables are kept in the same transaction as every change (crmsync/tx.py calls in
here), so they are never behind the records:

- ``report_counts`` (field, value, n): records not deleted per value of each counted field
  (COUNTED): customers by status, industry, source, level, region (province and city), month
  created, and day created and owner; follow-ups by day and who logged them.  The value is the
  stored value as JSON: ``null`` for empty, ``["上海市","上海市"]`` for a region, a day first
  (``["2024-05-21","zhang"]``) so that a period is a range of the primary key.  Read by everyone's
  (an admin's) summary and activity per owner, which no longer read the customers or follow-ups.
- ``stage_stays``: one row per completed stay in a customer status or a deal stage, appended when
  the status/stage changes, at the moment the audit log records it: the stage left, the stage
  entered, when, the days spent; its ``deleted`` follows the record's.  The medians are read in
  index order, without a sort; conversions in a period and lost-from by the stage entered.

``rebuild(conn)`` recomputes both from the records and the audit log: migration 6 (stores made
before), ``crmsync report rebuild`` (a store edited by hand), and the tests, which check the kept
tables against a rebuild after every kind of change (``differences``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from itertools import islice
from operator import itemgetter

import orjson
from sqlalchemy import Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text, text

report_metadata = MetaData()

report_counts = Table(
    "report_counts", report_metadata,
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
    Column("next_stage", String(40)),  # where it went: conversions and lost-from are read from here
    Column("entered", String(19)),
    Column("left_at", String(19), nullable=False),
    Column("days", Float),
    Column("deleted", Boolean, nullable=False, server_default=text("false")),
)
# the medians: per stage, the stays in order of days (entity and deleted are equalities)
Index("ix_stage_stays_median", stage_stays.c.entity, stage_stays.c.deleted, stage_stays.c.stage, stage_stays.c.days)
# a record's stays: the last one is where the next stay begins; delete and restore flag them
Index("ix_stage_stays_record", stage_stays.c.entity, stage_stays.c.record_id, stage_stays.c.id)
# the moves to a stage: in a period (conversions to 成交客户), to 流失客户 (lost from); covering
Index("ix_stage_stays_next", *(stage_stays.c[k] for k in ("entity", "next_stage", "deleted", "left_at", "record_id", "stage")))

#: Per counted entity, (counter name, columns, how the value is cut): one column, or several read
#: as a list; a cut of 7 or 10 keeps the month or the day of a time.
COUNTED: dict[str, tuple[tuple[str, tuple[str, ...], int | None], ...]] = {
    "customer": (("status", ("status",), None), ("industry", ("industry",), None), ("source", ("source",), None),
                 ("customer_level", ("customer_level",), None), ("region", ("province", "city"), None),
                 ("month", ("created_at",), 7), ("owner_day", ("created_at", "owner"), 10)),
    "followup": (("followup_day", ("follow_time", "user"), 10),),
}
COUNTED_COLUMNS = {entity: frozenset(c for _, cols, _ in counters for c in cols) for entity, counters in COUNTED.items()}

#: Which field's changes end a stay, per entity.
STAGE_FIELDS = {"customer": "status", "deal": "stage"}


def tracked_fields(entity: str) -> frozenset[str]:
    """The fields of ``entity`` whose changes the report tables follow."""
    fields = set(COUNTED_COLUMNS.get(entity, ()))
    if entity in STAGE_FIELDS:
        fields.add(STAGE_FIELDS[entity])
    return frozenset(fields | {"deleted"}) if fields else frozenset()


def value_key(value) -> str:
    """How a counted value is stored: JSON (orjson: compact, UTF-8 as is)."""
    return orjson.dumps(value).decode()


def _cut(value, cut: int | None):
    return value if cut is None or value is None else str(value)[:cut]


def _counter_value(values: tuple, cut: int | None) -> str:
    """The stored value of one counter: the first column cut (a month, a day), the rest as they are."""
    if len(values) == 1:
        return value_key(_cut(values[0], cut))
    return value_key([_cut(values[0], cut), *values[1:]])


def contribution(entity: str, row: Mapping) -> list[tuple[str, str]]:
    """The (field, value) counters one record adds to."""
    return [(name, _counter_value(tuple(row.get(c) for c in cols), cut)) for name, cols, cut in COUNTED[entity]]


class Pending:
    """The count changes of one transaction, written at its commit (flush)."""

    def __init__(self) -> None:
        self.deltas: Counter = Counter()

    def add(self, entity: str, row: Mapping, sign: int) -> None:
        """Count a record in (+1) or out (-1); a deleted record counts nowhere."""
        if entity not in COUNTED or row.get("deleted"):
            return
        for key in contribution(entity, row):
            self.deltas[key] += sign

    def add_columns(self, entity: str, cols: list[str], rows: list[tuple]) -> None:
        """Count in many new records given as tuples in column order (create_many): one C-level
        count per counter (itemgetter), and the month or day cut once per distinct value."""
        for name, names, cut in COUNTED.get(entity, ()):
            counts = Counter(map(itemgetter(*(cols.index(c) for c in names)), rows))
            for value, n in counts.items():
                self.deltas[(name, _counter_value(value if isinstance(value, tuple) else (value,), cut))] += n

    def change(self, entity: str, current: Mapping, diff: Mapping) -> None:
        """An update (or delete, restore): out with the old counters, in with the new."""
        if entity not in COUNTED or (COUNTED_COLUMNS[entity].isdisjoint(diff) and "deleted" not in diff):
            return
        self.add(entity, current, -1)
        self.add(entity, {**current, **diff}, +1)

    def flush(self, conn) -> None:
        rows = [{"f": f, "v": v, "d": d} for (f, v), d in self.deltas.items() if d]
        if rows:
            conn.execute(text("INSERT INTO report_counts (field, value, n) VALUES (:f, :v, :d) "
                              "ON CONFLICT (field, value) DO UPDATE SET n = report_counts.n + excluded.n"), rows)
        self.deltas.clear()


def _days(entered: str | None, left: str) -> float | None:
    if not entered:
        return None
    return (datetime.fromisoformat(left) - datetime.fromisoformat(str(entered)[:19])).total_seconds() / 86400


def end_stay(conn, entity: str, current: Mapping, next_stage, left_at: str) -> None:
    """Append the stay that ends now: the record leaves its status/stage in ``current`` for
    ``next_stage``.  It began at the end of the record's previous stay, or at its creation."""
    rid = current[_id_field(entity)]
    entered = conn.execute(text("SELECT left_at FROM stage_stays WHERE entity = :e AND record_id = :r "
                                "ORDER BY id DESC LIMIT 1"), {"e": entity, "r": rid}).scalar()
    entered = entered or current.get("created_at")
    conn.execute(stage_stays.insert().values(
        entity=entity, record_id=rid, stage=current.get(STAGE_FIELDS[entity]), next_stage=next_stage, entered=entered,
        left_at=left_at, days=_days(entered, left_at), deleted=bool(current.get("deleted"))))


def set_deleted(conn, entity: str, record_id: str, deleted: bool) -> None:
    conn.execute(stage_stays.update().where((stage_stays.c.entity == entity) & (stage_stays.c.record_id == record_id))
                 .values(deleted=deleted))


def _id_field(entity: str) -> str:
    return "customer_id" if entity == "customer" else "deal_id"


# ---- rebuilding and checking ---------------------------------------------------------------------

def _counted_now(conn) -> Counter:
    """The counters as the records say.  Each record's counted columns (a day, not a time) are read
    in chunks and counted per counter by Counter in C; Python steps once per distinct value, never
    per record (5,000,000 follow-ups; SQLite's GROUP BY would sort them all first)."""
    counts: Counter = Counter()
    for entity, counters in COUNTED.items():
        cols = sorted(COUNTED_COLUMNS[entity])
        cuts = {c: [cut for _, names, cut in counters if c in names] for c in cols}
        exprs = [f'"{c}"' if None in cuts[c] else f'substr("{c}", 1, {max(cuts[c])})' for c in cols]  # "user": a keyword
        table = "customers" if entity == "customer" else "followups"
        pickers = [(name, itemgetter(*(cols.index(c) for c in names)), cut) for name, names, cut in counters]
        raw = {name: Counter() for name, _, _ in counters}
        cursor = conn.connection.cursor()
        try:
            cursor.execute(f"SELECT {', '.join(exprs)} FROM {table} WHERE deleted = false")
            while chunk := cursor.fetchmany(REBUILD_BATCH):
                for name, pick, _ in pickers:
                    raw[name].update(map(pick, chunk))
        finally:
            cursor.close()
        for name, _, cut in pickers:
            for value, n in raw[name].items():
                counts[(name, _counter_value(value if isinstance(value, tuple) else (value,), cut))] += n
    return counts


def _stays_now(conn) -> Iterator[tuple]:
    """Every completed stay, from the audit log: each logged status/stage change ends one, which
    began at the change before it, or at the record's creation."""
    for entity, field in STAGE_FIELDS.items():
        table, idf = ("customers", "customer_id") if entity == "customer" else ("deals", "deal_id")
        rows = conn.execute(text(
            f"SELECT a.record_id, a.old_value, a.new_value, a.at, LAG(a.at) OVER (PARTITION BY a.record_id ORDER BY a.seq), "
            f"t.created_at, t.deleted FROM audit_log a JOIN {table} t ON t.{idf} = a.record_id "
            f"WHERE a.entity = :e AND a.field = :f AND a.action = 'update' ORDER BY a.seq"), {"e": entity, "f": field})
        for rid, old, new, at, before, created, deleted in rows:
            entered = before or created
            yield (entity, rid, _loaded(old), _loaded(new), entered, at, _days(entered, at), bool(deleted))


def _loaded(value: str | None):
    return None if value is None else orjson.loads(value)


REBUILD_BATCH = 50_000


def batched(items: Iterable, n: int) -> Iterator[list]:
    it = iter(items)
    while batch := list(islice(it, n)):
        yield batch


def rebuild(conn) -> tuple[int, int]:
    """Recompute both tables from the records and the audit log; return (counters, stays)."""
    counts = _counted_now(conn)
    conn.execute(report_counts.delete())
    if counts:
        conn.execute(report_counts.insert(), [{"field": f, "value": v, "n": n} for (f, v), n in counts.items()])
    conn.execute(stage_stays.delete())
    keys = ("entity", "record_id", "stage", "next_stage", "entered", "left_at", "days", "deleted")
    stays = 0
    # in batches: a million stays as one list of dicts took over a gigabyte
    for batch in batched(_stays_now(conn), REBUILD_BATCH):
        conn.execute(stage_stays.insert(), [dict(zip(keys, s)) for s in batch])
        stays += len(batch)
    return len(counts), stays


def differences(conn) -> list[str]:
    """What the kept tables say that a rebuild would not (empty when they agree)."""
    out = []
    kept = {(f, v): n for f, v, n in conn.execute(text("SELECT field, value, n FROM report_counts WHERE n <> 0"))}
    now = {k: n for k, n in _counted_now(conn).items() if n}
    for key in sorted(set(kept) | set(now)):
        if kept.get(key, 0) != now.get(key, 0):
            out.append(f"report_counts {key}: kept {kept.get(key, 0)}, records {now.get(key, 0)}")
    kept_stays = sorted(_rounded(r) for r in conn.execute(text(
        "SELECT entity, record_id, stage, next_stage, entered, left_at, days, deleted FROM stage_stays")))
    now_stays = sorted(_rounded(r) for r in _stays_now(conn))
    if kept_stays != now_stays:
        extra = [s for s in kept_stays if s not in now_stays][:3]
        missing = [s for s in now_stays if s not in kept_stays][:3]
        out.append(f"stage_stays: kept {len(kept_stays)}, audit log {len(now_stays)}; "
                   f"only kept {extra}, only in the log {missing}")
    return out


def _rounded(row: Iterable) -> tuple:
    e, r, s, nxt, entered, left, days, deleted = row
    return (e, r, s, nxt, entered, left, None if days is None else round(days, 6), bool(deleted))


def create(conn) -> None:
    """Migration 6: the report tables, filled from what the store holds."""
    report_metadata.create_all(conn)
    rebuild(conn)
