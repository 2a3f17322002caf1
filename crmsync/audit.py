"""The audit log: an append-only chain of entries, each carrying the hash of the one before.

An entry says who did what, when, from where (source), to which record and field, with the old and
new values and the reason.  The log is also the store's history: a record's creation entry holds its
full first version, and each later field change is one entry, so any past version can be rebuilt by
replaying (see replay_version).

Hash of an entry = sha256 of the JSON array of the previous hash and the entry's parts (entry_hash).  Changing, removing or
reordering an entry breaks the chain from that point, and verify() names the first broken entry.
"""

from __future__ import annotations

import hashlib

import orjson
from dataclasses import dataclass

from sqlalchemy import select

from .tables import GENESIS_HASH, audit_head, audit_log

# Actions that write entries; the first three change a record's version.
CREATE, UPDATE, DELETE, RESTORE = "create", "update", "delete", "restore"
REFUSED = "refused"  # a change the checks refused: logged so attempts show


# An entry before it is chained: (at, user, source, action, entity, record_id, version, field,
# old_value JSON, new_value JSON, reason).  Plain tuples: a bulk import queues 100,000 of them.
Entry = tuple


def entry(at, user, source, action, entity=None, record_id=None, version=None, field=None,
          old_value=None, new_value=None, reason=None) -> Entry:
    """Return an entry with its values encoded as the log stores them."""
    return (at, user, source, action, entity, record_id, version, field, dump_value(old_value),
            dump_value(new_value), reason)


# orjson: compact UTF-8 JSON in C, several times the stdlib encoder on a 40-field snapshot (the
# bulk-import hot path).  Dates and other objects go through str() as before, so text stays
# '2024-05-21 10:00:00' and not ISO-with-T.
_DUMP_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def dump_value(value) -> str | None:
    """JSON text of a value as stored in the audit log (None stays NULL)."""
    if value is None:
        return None
    return orjson.dumps(value, default=str, option=_DUMP_OPTIONS).decode()


def load_value(text: str | None):
    return None if text is None else orjson.loads(text)


def entry_hash(prev_hash: str, seq: int, e: Entry) -> str:
    """Return the hash of one entry given the previous link.

    The hashed text is the JSON array [prev_hash, seq, *entry]: JSON quotes and escapes every part,
    so no two different entries share a text, whatever characters their free text holds.
    """
    return hashlib.sha256(orjson.dumps((prev_hash, seq, *e), default=str)).hexdigest()


COLUMNS = ("seq", "at", "user", "source", "action", "entity", "record_id", "version", "field",
           "old_value", "new_value", "reason", "prev_hash", "hash")


def append(conn, entries: list[Entry]) -> None:
    """Chain and write entries inside the caller's (write-locked) transaction."""
    if not entries:
        return
    head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
    seq, prev = head.seq, head.hash
    rows = []
    for e in entries:
        seq += 1
        h = entry_hash(prev, seq, e)
        rows.append((seq, *e, prev, h))
        prev = h
    from .engine import bulk_insert

    # Bulk path: tuples straight to the driver (SQLAlchemy dict building costs more than the insert).
    bulk_insert(conn, "audit_log", COLUMNS, rows)
    conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=seq, hash=prev))


@dataclass
class VerifyReport:
    entries: int
    problems: list[tuple[int, str]]  # (seq, what is wrong)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(conn, batch: int = 50_000) -> VerifyReport:
    """Recompute the chain; return every broken, missing or altered entry."""
    problems: list[tuple[int, str]] = []
    prev, expected_seq, count = GENESIS_HASH, 1, 0
    last = 0
    while True:
        rows = conn.execute(select(audit_log).where(audit_log.c.seq > last)
                            .order_by(audit_log.c.seq).limit(batch)).mappings().all()
        if not rows:
            break
        for r in rows:
            count += 1
            seq = r["seq"]
            if seq != expected_seq:
                problems.append((expected_seq, f"missing entries {expected_seq}–{seq - 1}"))
            if r["prev_hash"] != prev:
                problems.append((seq, "previous-hash link does not match (an earlier entry was changed or removed)"))
            e = tuple(r[c] for c in COLUMNS[1:12])
            if entry_hash(r["prev_hash"], seq, e) != r["hash"]:
                problems.append((seq, "content does not match its hash (the entry was altered)"))
            prev, expected_seq, last = r["hash"], seq + 1, seq
    head = conn.execute(select(audit_head).where(audit_head.c.id == 1)).mappings().first()
    if head is None or head["seq"] != last or head["hash"] != prev:
        problems.append((last + 1, "the chain head does not match the last entry (entries removed at the end)"))
    return VerifyReport(count, problems)


def replay_version(entries: list[dict], version: int | None = None) -> dict | None:
    """Rebuild a record as it was at `version` (latest if None) from its audit entries, in seq order."""
    record: dict | None = None
    for e in entries:
        if e["action"] == CREATE:
            # the snapshot holds the typed values; who, when and the first version are the entry's own
            record = {"version": 1, "deleted": False, "created_at": e["at"], "created_by": e["user"],
                      "updated_at": e["at"], "updated_by": e["user"], **(load_value(e["new_value"]) or {})}
            continue
        if record is None or e["version"] is None or e["field"] in (None, "*"):
            continue
        if version is not None and e["version"] > version:
            break
        record[e["field"]] = load_value(e["new_value"])
        record["version"] = e["version"]
        record["updated_at"], record["updated_by"] = e["at"], e["user"]
    if record is not None and version is not None and record.get("version", 1) < version:
        return None  # that version never existed
    return record
