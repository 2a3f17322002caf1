"""The audit log: an append-only chain of entries, each carrying the hash of the one before.

An entry says who did what, when, from where (source), to which record and field, with the old and
new values and the reason.  The log is also the store's history: a record's creation entry holds its
full first version, and each later field change is one entry, so any past version can be rebuilt by
replaying (see replay_version).

Hash of an entry = sha256(prev_hash + canonical JSON of its content).  Changing, removing or
reordering an entry breaks the chain from that point, and verify() names the first broken entry.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select

from .tables import GENESIS_HASH, audit_head, audit_log

# Actions that write entries; the first three change a record's version.
CREATE, UPDATE, DELETE, RESTORE = "create", "update", "delete", "restore"
REFUSED = "refused"  # a change the checks refused: logged so attempts show


@dataclass
class Entry:
    at: str
    user: str | None
    source: str | None
    action: str
    entity: str | None = None
    record_id: str | None = None
    version: int | None = None
    field: str | None = None
    old_value: object = None
    new_value: object = None
    reason: str | None = None


def dump_value(value) -> str | None:
    """JSON text of a value as stored in the audit log (None stays NULL)."""
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str)


def load_value(text: str | None):
    return None if text is None else json.loads(text)


def entry_hash(prev_hash: str, seq: int, row: dict) -> str:
    """Return the hash of one entry given the previous link (row holds the stored column values)."""
    content = [seq, row["at"], row["user"], row["source"], row["action"], row["entity"],
               row["record_id"], row["version"], row["field"], row["old_value"], row["new_value"],
               row["reason"]]
    canonical = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def append(conn, entries: list[Entry]) -> None:
    """Append entries to the chain inside the caller's (write-locked) transaction."""
    if not entries:
        return
    head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one()
    seq, prev = head.seq, head.hash
    rows = []
    for e in entries:
        seq += 1
        row = {"at": e.at, "user": e.user, "source": e.source, "action": e.action,
               "entity": e.entity, "record_id": e.record_id, "version": e.version, "field": e.field,
               "old_value": dump_value(e.old_value), "new_value": dump_value(e.new_value),
               "reason": e.reason}
        h = entry_hash(prev, seq, row)
        rows.append((seq, row["at"], row["user"], row["source"], row["action"], row["entity"],
                     row["record_id"], row["version"], row["field"], row["old_value"],
                     row["new_value"], row["reason"], prev, h))
        prev = h
    cols = [c.name for c in audit_log.columns]
    marks = ", ".join(["?"] * len(cols)) if conn.dialect.paramstyle == "qmark" else \
        ", ".join(["%s"] * len(cols))
    quoted = ", ".join(f'"{c}"' for c in cols)
    # Bulk path: tuples straight to the driver (SQLAlchemy dict building costs more than the insert).
    conn.exec_driver_sql(f"INSERT INTO audit_log ({quoted}) VALUES ({marks})", rows)
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
            if entry_hash(r["prev_hash"], seq, r) != r["hash"]:
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
            record = dict(load_value(e["new_value"]) or {})
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
