"""Applying a copy's sync in ONE store transaction: gather the store's side, plan (sync.py), write.

``apply_copy`` opens the transaction (SQLite: BEGIN IMMEDIATE, so the store cannot move between
reading it and writing the plan), and for each entity in parent-first order:

1. reads what the plan needs — versions, the copy's remembered rows (``sync_rows``) and client keys
   (``sync_keys``), current and base records of the rows that changed, their customers;
2. plans (crmsync.sync), then writes: new records (their client keys recorded, so a second sync of
   the same rows finds them), updates in bulk with version checks, deletes, conflicts (kept in
   ``sync_conflicts``), refusals — each with audit entries whose source names the copy;
3. remembers each row as the copy now holds it (``sync_rows``): what the next sync compares with.

Everything commits together or not at all.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, select

from . import audit, report_tables
from .errors import CrmsyncError, StaleVersion
from .schema import ENTITIES, Entity
from .sync import (DELETED_FIELD, CopyRow, Plan, PlanInput, Refusal, StoreView, SyncPolicy, _text_values,
                   align, digest, plan_entity, triage_columns)
from .tables import ENTITY_TABLES, sync_conflicts, sync_keys, sync_rows

__all__ = ["SheetRows", "ApplyResult", "apply_copy", "render_value", "source_of"]


class SheetRows:
    """One entity sheet of a copy, read: the editable fields it has columns for, and its rows as
    columns (Excel row numbers, cells, ids, versions, client keys, reasons, digests).

    A row becomes a CopyRow only when something needs it (``row(i)``, or ``rows`` for all): in
    a large copy most rows are unchanged and are never built.
    """

    def __init__(self, entity: Entity, sheet: str, fields: tuple[str, ...], *, numbers=(), cells=(),
                 ids=(), versions=(), keys=(), reasons=(), digests=(), rows: Sequence[CopyRow] | None = None):
        self.entity, self.sheet, self.fields = entity, sheet, fields
        if rows is not None:  # already built (tests, small sheets)
            self._built = dict(enumerate(rows))
            numbers, ids, digests = [r.row for r in rows], [r.record_id for r in rows], [r.digest for r in rows]
            reasons, cells = [r.reason for r in rows], [None] * len(rows)
            versions = keys = [None] * len(rows)
        else:
            self._built = {}
        self.numbers, self.cells, self.ids, self.digests = list(numbers), list(cells), list(ids), list(digests)
        self.versions, self.keys, self.reasons = list(versions), list(keys), list(reasons)
        self._by_number: dict[int, int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def row(self, i: int) -> CopyRow:
        r = self._built.get(i)
        if r is None:
            r = self._built[i] = CopyRow(self.numbers[i], self.ids[i], _as_int(self.versions[i]),
                                         _as_text(self.keys[i]), None, _as_text(self.reasons[i]),
                                         self.digests[i], cells=self.cells[i], keys=self.fields)
        return r

    @property
    def rows(self) -> list[CopyRow]:
        return [self.row(i) for i in range(len(self.ids))]

    def at(self, excel_row: int) -> CopyRow | None:
        """The row at this Excel row number."""
        if self._by_number is None:
            self._by_number = {n: i for i, n in enumerate(self.numbers)}
        i = self._by_number.get(excel_row)
        return None if i is None else self.row(i)


def _as_text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    text = str(v).strip()
    return text or None


def _as_int(v: Any) -> int | None:
    if v is None or v.__class__ is int:
        return v
    try:
        return int(float(v)) if v != "" else None
    except (TypeError, ValueError):
        return None


@dataclass
class ApplyResult:
    plans: dict[str, Plan] = field(default_factory=dict)
    created: dict[str, dict[int, str]] = field(default_factory=dict)  # entity → row → new id
    ref_writes: dict[str, dict[int, str]] = field(default_factory=dict)  # entity → row → customer id
    applied: int = 0
    created_count: int = 0
    deleted: int = 0
    conflicts: int = 0
    refused: int = 0
    conflict_ids: list[int] = field(default_factory=list)


def source_of(copy_id: str) -> str:
    """The audit source of a sync: names the copy."""
    return f"sync:{copy_id}"


def render_value(f, value, enums, lang: str):
    """A store value as a copy's cell reads back after it is written (labels, floats, dates)."""
    from .book_file import _as_read
    from .copies import cell_value

    return _as_read(cell_value(f, value, enums, lang))


def row_digest(ent: Entity, fields: Sequence[str], values: Mapping, enums, lang: str) -> str:
    """The digest a copy row holding this store record's values would have."""
    return digest(tuple(render_value(ent.get(k), values.get(k), enums, lang) for k in fields))


def apply_copy(store, user: str, copy_id: str, sheets: Sequence[SheetRows], *, write_back: bool,
               lang: str = "zh", policy: SyncPolicy = SyncPolicy(),
               on_status: Callable[[str], None] | None = None) -> ApplyResult:
    """Sync the read sheets of one copy as ``user`` in one transaction; return what was done."""
    from .tx import bulk_gc

    with bulk_gc():  # many small objects, no cycles: a full collection mid-sync costs more than the sync
        return _apply_copy(store, user, copy_id, sheets, write_back, lang, policy, on_status)


def _apply_copy(store, user, copy_id, sheets, write_back, lang, policy, on_status) -> ApplyResult:
    result = ApplyResult()
    by_entity = {s.entity.key: s for s in sheets}
    enums = store.enums()
    users = {u.name: u for u in store.users()}
    with store.transaction(user, source_of(copy_id)) as tx:
        name_map: dict[str, str] = {}  # customer name / client key in this copy → id (for refs)
        for key in ENTITIES:
            sheet = by_entity.get(key)
            if sheet is None:
                continue
            if on_status:
                on_status(f"{sheet.sheet}…")
            ent = store.entity(key)
            if key != "customer":
                _resolve_refs(sheet, name_map, result)
            plan = _sync_entity(tx, ent, sheet, copy_id, enums, users, lang, policy, write_back, result)
            result.plans[key] = plan
            if key == "customer" and len(by_entity) > 1:
                name_map = _customer_names(sheet, plan, result)
    return result


# ---- per entity ----------------------------------------------------------------------------------

def _sync_entity(tx, ent: Entity, sheet: SheetRows, copy_id: str, enums, users, lang: str,
                 policy: SyncPolicy, write_back: bool, result: ApplyResult) -> Plan:
    conn = tx.conn
    table = ENTITY_TABLES[ent.key]
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    # What the copy held at its last sync: one read of tuples straight from the driver.
    known = {rid: (v, dig) for rid, v, dig in conn.exec_driver_sql(
        f"SELECT record_id, version, digest FROM sync_rows WHERE copy_id = {mark} AND entity = {mark}",
        (copy_id, ent.key)).fetchall()}
    # The store's versions only where they moved since (the join runs in the database), plus those
    # of rows the copy never synced: a record absent from ``versions`` is as ``known`` says.
    id_col = f'c."{ent.id_field}"'
    versions = {rid: (v, bool(d)) for rid, v, d in conn.exec_driver_sql(
        f"SELECT r.record_id, c.version, c.deleted FROM sync_rows r JOIN {table.name} c ON {id_col} = r.record_id "
        f"WHERE r.copy_id = {mark} AND r.entity = {mark} AND (c.version <> r.version OR c.deleted)",
        (copy_id, ent.key)).fetchall()}
    ids = set(sheet.ids)
    ids.discard(None)
    never_synced = ids - known.keys()  # set operations run in C: this is 100,000 ids
    versions.update(_versions(conn, ent, never_synced))
    key_rows = conn.execute(select(sync_keys).where(and_(
        sync_keys.c.copy_id == copy_id, sync_keys.c.entity == ent.key))).mappings().all()
    keys = {r["client_key"]: (r["record_id"], r["version"]) for r in key_rows}
    memory = {r["client_key"]: json.loads(r["row_values"] or "{}") for r in key_rows}
    remembered = [(r["client_key"], r["record_id"], r["version"], r["digest"], r["row_number"],
                   memory[r["client_key"]].get("text", {})) for r in key_rows if r["keyless"]]
    sent = {r["record_id"]: memory[r["client_key"]].get("base", {}) for r in key_rows}
    view = StoreView(versions=versions, current={}, base={}, known=known, keys=keys, remembered=remembered,
                     sent=sent)

    # rows the copy never synced before: compare with the store's current record as a cell
    unknown = [rid for rid in never_synced if rid in versions]
    fresh = {}
    if unknown:
        for rid, rec in _load(tx, ent, unknown).items():
            fresh[rid] = row_digest(ent, sheet.fields, rec, enums, lang)
    tri = triage_columns(sheet.ids, sheet.digests, sheet.reasons, sheet.row, view, fresh)
    matched = align(ids, tri, view, policy)

    need = {r.record_id for r in tri.merge} | set(tri.missing)
    current = _load(tx, ent, need)
    view.current = current
    base = {}
    for r in tri.merge:
        rid = r.record_id
        bv = tri.base_version.get(rid)
        cur = current.get(rid)
        if cur is not None and bv is not None and bv != cur["version"] and bv >= 1:
            try:
                base[rid] = tx.store.version(ent.key, rid, bv)
            except CrmsyncError:
                pass
    view.base = base
    if ent.key == "customer":
        view.parents = {}
    else:
        cids = {rec.get("customer_id") for rec in current.values()}
        cids |= {r.values.get("customer_id") for r in tri.new if isinstance(r.values.get("customer_id"), str)}
        view.parents = {k: v for k, v in _load(tx, ENTITIES["customer"], cids).items() if not v.get("deleted")}
    view.resolved, view.open_conflicts = _conflict_memory(conn, ent.key, copy_id, need)

    inp = PlanInput(entity=ent, user=tx.user, enums=enums, lang=lang, fields=sheet.fields, policy=policy,
                    new_key=lambda: uuid.uuid4().hex, users=users,
                    duplicates=_duplicate_finder(tx, sheet) if ent.key == "customer" else None)
    plan = plan_entity(tri, view, inp, matched)
    _apply_plan(tx, ent, sheet, plan, copy_id, enums, lang, write_back, result, never_synced)
    return plan


def _versions(conn, ent: Entity, ids) -> dict[str, tuple[int, bool]]:
    """(version, deleted) of these records, in chunks the driver accepts."""
    table = ENTITY_TABLES[ent.key]
    out = {}
    ids = list(dict.fromkeys(i for i in ids if i))
    for i in range(0, len(ids), 900):
        chunk = ids[i:i + 900]
        marks = ", ".join(["?" if conn.dialect.paramstyle == "qmark" else "%s"] * len(chunk))
        for rid, v, d in conn.exec_driver_sql(
                f'SELECT "{ent.id_field}", version, deleted FROM {table.name} WHERE "{ent.id_field}" IN ({marks})',
                tuple(chunk)).fetchall():
            out[rid] = (v, bool(d))
    return out


def _load(tx, ent: Entity, ids) -> dict[str, dict]:
    """Current records by id (deleted ones included), in chunks the driver accepts."""
    ids = list(dict.fromkeys(i for i in ids if i))
    table = ENTITY_TABLES[ent.key]
    conn = tx.conn
    names = [c.name for c in table.columns]
    columns = ", ".join(f'"{n}"' for n in names)
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    at = names.index(ent.id_field)
    out = {}
    for i in range(0, len(ids), 900):  # tuples from the driver, in chunks it accepts
        chunk = ids[i:i + 900]
        rows = conn.exec_driver_sql(f'SELECT {columns} FROM {table.name} WHERE "{ent.id_field}" IN '
                                    f'({", ".join([mark] * len(chunk))})', tuple(chunk)).fetchall()
        for row in rows:
            out[row[at]] = tx.store._to_record(ent, dict(zip(names, row)))
    return out


def _conflict_memory(conn, entity_key: str, copy_id: str, ids) -> tuple[dict, set]:
    """Resolved conflicts (what was settled for a local value) and open ones, for these records."""
    resolved, open_ = {}, set()
    ids = list(ids)
    c = sync_conflicts.c
    for i in range(0, len(ids), 900):
        rows = conn.execute(select(c.record_id, c.field, c.local_value, c.status).where(and_(
            c.entity == entity_key, c.record_id.in_(ids[i:i + 900])))).all()
        for rid, fld, local, status in rows:
            k = (rid, fld, local or "null")
            if status == "open":
                open_.add(k)
            else:
                resolved[k] = True
    return resolved, open_


def _duplicate_finder(tx, sheet: SheetRows):
    """For new customers: an existing customer with the same credit code or ID number (refused),
    or the same name (reported)."""
    table = ENTITY_TABLES["customer"]
    c = table.c

    def find(values: Mapping):
        for key, hard in (("credit_code", True), ("id_number", True), ("customer_name", False)):
            v = values.get(key)
            if not v:
                continue
            hit = tx.conn.execute(select(c.customer_id).where(and_(c[key] == v, c.deleted.is_(False)))).first()
            if hit is not None:
                return hit[0], key, hard
        return None

    return find


# ---- references between sheets -------------------------------------------------------------------

def _customer_names(sheet: SheetRows, plan: Plan, result: ApplyResult) -> dict[str, str]:
    """Customer name and client key of each customer row of the copy → its id (new ones included)."""
    created = result.created.get("customer", {})
    matched = {number: rid for number, (_key, rid, _v) in plan.matched.items()}
    at = sheet.fields.index("customer_name") if "customer_name" in sheet.fields else None
    names: dict[str, str] = {}
    for i, number in enumerate(sheet.numbers):
        rid = sheet.ids[i] or matched.get(number) or created.get(number)
        if not rid:
            continue
        name = sheet.cells[i][at] if at is not None and sheet.cells[i] is not None else None
        if isinstance(name, str) and name.strip():
            names.setdefault(name.strip(), rid)
        key = _as_text(sheet.keys[i])
        if key:
            names[key] = rid
    return names


def _resolve_refs(sheet: SheetRows, names: Mapping[str, str], result: ApplyResult) -> None:
    """A child row may name its customer by the customer's name or client key (a new customer has
    no id yet): put the id in its place, and remember to write it back."""
    if "customer_id" not in sheet.fields:
        return
    at = sheet.fields.index("customer_id")
    writes = result.ref_writes.setdefault(sheet.entity.key, {})
    for i, cells in enumerate(sheet.cells):
        v = cells[at] if cells is not None else sheet.row(i).values.get("customer_id")
        if isinstance(v, str) and v.strip() in names and not _looks_like_id(v.strip()):
            r = sheet.row(i)
            r.values["customer_id"] = names[v.strip()]
            writes[r.row] = names[v.strip()]


def _looks_like_id(text: str) -> bool:
    return len(text) >= 13 and text[0] == "C" and text[1:].isdigit()


# ---- writing the plan ----------------------------------------------------------------------------

def _apply_plan(tx, ent: Entity, sheet: SheetRows, plan: Plan, copy_id: str, enums, lang: str,
                write_back: bool, result: ApplyResult, never_synced: set[str]) -> None:
    new_versions = _apply_updates(tx, ent, plan, result)
    created = _apply_creates(tx, ent, plan, copy_id, result)
    created_records = _load(tx, ent, created.values()) if created else {}
    result.created[ent.key] = created
    for d in plan.deletes:
        try:
            tx.delete(ent.key, d.record_id, reason=None)
            result.deleted += 1
        except CrmsyncError as exc:
            tx.refuse(str(exc), entity=ent.key, record_id=d.record_id, field=DELETED_FIELD)
            result.refused += 1
    for c in plan.conflicts:
        _record_conflict(tx, ent, c, copy_id, result)
    for f in plan.refusals:
        tx.refuse(f.reason, entity=ent.key, record_id=f.record_id, field=f.field, value=_plain(f.value))
        result.refused += 1
    # what each row now holds, for the next sync
    ref_writes = result.ref_writes.get(ent.key, {})
    remember: dict[str, tuple[int, str]] = {}
    for row_number, w in plan.writes.items():
        r = sheet.at(row_number)
        if r is None:
            continue
        rid = r.record_id or created.get(row_number)
        if not rid:
            continue
        if w.version == -1:
            w.version = new_versions.get(rid)
        if row_number in created:
            w.record_id, w.version = rid, 1
            rec = created_records.get(rid) or {}
            for k in sheet.fields:
                if rec.get(k) is not None and render_value(ent.get(k), rec.get(k), enums, lang) != r.values.get(k):
                    w.values[k] = rec[k]
        if row_number in ref_writes and write_back:
            w.values.setdefault("customer_id", ref_writes[row_number])
        incoming = {k: v for k, v in w.values.items() if k in sheet.fields}
        if write_back and w.version is not None:
            values = dict(r.values)
            for k, v in incoming.items():
                values[k] = render_value(ent.get(k), v, enums, lang)
            remember[rid] = (w.version, digest(tuple(values.get(k) for k in sheet.fields)))
        elif w.version is not None and not incoming:
            remember[rid] = (w.version, r.digest)
        else:
            base = r.version if r.version is not None else plan.matched.get(row_number, (None, None, 1))[2]
            remember[rid] = (base or 1, r.digest)
    _remember_rows(tx, ent, copy_id, sheet, plan, remember, never_synced)
    _remember_keys(tx, ent, copy_id, sheet, plan, created, remember)


def _apply_updates(tx, ent: Entity, plan: Plan, result: ApplyResult) -> dict[str, int]:
    """Write the plan's updates in bulk (tuples to the driver), each checked against its version."""
    table = ENTITY_TABLES[ent.key]
    groups: dict[tuple[str, ...], list] = {}
    custom = set(ent.custom_keys)
    # changes the report tables follow (counted fields, status/stage, deleted) need the whole
    # record before them: they take the one-by-one path, as custom fields do
    one_by_one = custom | report_tables.tracked_fields(ent.key)
    new_versions = {}
    for u in plan.updates:
        if one_by_one & set(u.changes):
            current = tx.require_record(ent.key, u.record_id)
            try:
                tx._write_changes(ent, current, u.changes, u.reason)
            except StaleVersion as exc:
                tx.refuse(str(exc), entity=ent.key, record_id=u.record_id)
                result.refused += 1
                continue
            new_versions[u.record_id] = current["version"] + 1
            result.applied += 1
            continue
        groups.setdefault(tuple(sorted(u.changes)), []).append(u)
    mark = "?" if tx.conn.dialect.paramstyle == "qmark" else "%s"
    now, who = tx.now, tx.user.name
    for keys, updates in groups.items():
        sets = ", ".join(f'"{k}" = {mark}' for k in keys)
        sql = (f'UPDATE {table.name} SET {sets}, "version" = {mark}, "updated_at" = {mark}, '
               f'"updated_by" = {mark} WHERE "{ent.id_field}" = {mark} AND "version" = {mark}')
        params = [tuple(u.changes[k] for k in keys) + (u.version + 1, now, who, u.record_id, u.version)
                  for u in updates]
        cur = tx.conn.exec_driver_sql(sql, params)
        if cur.rowcount not in (-1, len(params)):
            raise StaleVersion(f"{ent.zh}: {len(params) - cur.rowcount} 条记录刚被他人修改，请重新同步")
        for u in updates:
            version = u.version + 1
            new_versions[u.record_id] = version
            for k in keys:
                tx.entries.append(audit.entry(now, who, tx.source, audit.UPDATE, ent.key, u.record_id,
                                              version, k, u.old.get(k),
                                              u.changes[k], u.reason))
        result.applied += len(updates)
    return new_versions


def _apply_creates(tx, ent: Entity, plan: Plan, copy_id: str, result: ApplyResult) -> dict[int, str]:
    if not plan.creates:
        return {}
    created: dict[int, str] = {}
    queued = len(tx.entries)
    try:
        with tx.conn.begin_nested():
            ids = tx.create_many(ent.key, [c.values for c in plan.creates], validated=True)
        for c, rid in zip(plan.creates, ids):
            created[c.row] = rid
    except CrmsyncError:
        del tx.entries[queued:]  # the rolled-back rows' audit entries go with them
        for c in plan.creates:  # one by one, so one bad row refuses only itself
            queued = len(tx.entries)
            try:
                with tx.conn.begin_nested():
                    created[c.row] = tx.create(ent.key, c.values, reason=c.reason)[ent.id_field]
            except CrmsyncError as exc:
                del tx.entries[queued:]
                tx.refuse(str(exc), entity=ent.key, value=_plain(c.values))
                plan.refusals.append(_refusal(c.row, str(exc)))
                plan.writes.pop(c.row, None)
                result.refused += 1
    result.created_count += len(created)
    if ent.key == "followup" and created:
        _touch_customers(tx, [c.values for c in plan.creates if c.row in created])
    return created


def _touch_customers(tx, followups: list) -> None:
    """A follow-up typed in a copy moves its customer's last contact and next follow-up, as
    `crmsync followup add` does: reminders must not depend on which way a call was logged."""
    from .followups import touch_customer

    latest: dict[str, dict] = {}
    for f in followups:
        cid = f.get("customer_id")
        if cid and (cid not in latest or str(f.get("follow_time")) > str(latest[cid].get("follow_time"))):
            latest[cid] = f
    for cid, f in latest.items():
        customer = tx.get("customer", cid)
        if customer is not None and not customer.get("deleted"):
            touch_customer(tx, customer, f)


def _refusal(row: int, text: str) -> Refusal:
    return Refusal(row, None, None, None, text)


def _record_conflict(tx, ent: Entity, c, copy_id: str, result: ApplyResult) -> None:
    dump = audit.dump_value
    values = dict(entity=ent.key, record_id=c.record_id, field=c.field, base_value=dump(c.base),
                  local_value=dump(c.local) or "null", store_value=dump(c.store), base_version=c.base_version,
                  store_version=c.store_version, local_user=tx.user.name, local_time=tx.now,
                  store_user=c.store_user, store_time=c.store_time, copy_id=copy_id, sheet_row=c.row,
                  status="open")
    cid = tx.conn.execute(sync_conflicts.insert().values(**values)).inserted_primary_key[0]
    tx.log("conflict", entity=ent.key, record_id=c.record_id, version=c.store_version, field=c.field,
           old=c.store, new=c.local, reason=f"conflict #{cid}")
    result.conflicts += 1
    result.conflict_ids.append(cid)


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool, dict, list)):
        return value
    return str(value)


def _remember_rows(tx, ent: Entity, copy_id: str, sheet: SheetRows, plan: Plan,
                   remember: dict[str, tuple[int, str]], never_synced: set[str]) -> None:
    """Upsert what each row now holds; rows seen for the first time are remembered as they are."""
    conn = tx.conn
    rows = dict(remember)
    first_seen = [rid for rid in never_synced if rid in plan.seen and rid not in rows]
    if first_seen:  # unchanged rows this copy never synced before: remember them once
        version_of = {rid: _as_int(v) for rid, v in zip(sheet.ids, sheet.versions) if rid in never_synced}
        for rid in first_seen:
            rows[rid] = (version_of.get(rid) or 1, plan.seen[rid][1])
    if rows:
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        conn.exec_driver_sql(
            f"INSERT INTO sync_rows (copy_id, entity, record_id, version, digest) VALUES ({mark}, {mark}, {mark}, {mark}, {mark}) "
            "ON CONFLICT (copy_id, entity, record_id) DO UPDATE SET version = excluded.version, digest = excluded.digest",
            [(copy_id, ent.key, rid, v, d) for rid, (v, d) in rows.items()])
    gone = plan_missing(plan)
    if gone:
        conn.execute(sync_rows.delete().where(and_(sync_rows.c.copy_id == copy_id, sync_rows.c.entity == ent.key,
                                                   sync_rows.c.record_id.in_(gone))))


def plan_missing(plan: Plan) -> list[str]:
    """Ids of delete requests settled by this sync (deleted, refused or in conflict): forgotten, so
    the same request is not made again by the next sync of the unchanged copy."""
    out = [d.record_id for d in plan.deletes]
    out += [c.record_id for c in plan.conflicts if c.row is None]
    out += [f.record_id for f in plan.refusals if f.row is None and f.record_id]
    return out


def _remember_keys(tx, ent: Entity, copy_id: str, sheet: SheetRows, plan: Plan, created: dict[int, str],
                   remember: dict[str, tuple[int, str]]) -> None:
    conn = tx.conn
    for c in plan.creates:
        rid = created.get(c.row)
        if rid is None:
            continue
        r = sheet.at(c.row)
        conn.execute(sync_keys.insert().values(
            copy_id=copy_id, entity=ent.key, client_key=c.client_key, record_id=rid,
            version=remember.get(rid, (1, ""))[0], digest=r.digest, row_number=c.row,
            row_values=_memory(c.row_values, c.base_values), keyless=c.keyless,
            created_at=tx.now))
    for row_number, (key, rid, _version) in plan.matched.items():
        r = sheet.at(row_number)
        if r is None:
            continue
        conn.execute(sync_keys.update().where(and_(
            sync_keys.c.copy_id == copy_id, sync_keys.c.entity == ent.key, sync_keys.c.client_key == key))
            .values(digest=r.digest, row_number=row_number, version=remember.get(rid, (_version, ""))[0],
                    row_values=_memory(_text_values(r.values), plan.sent.get(rid, {}))))


def _memory(text_values: Mapping, base_values: Mapping) -> str:
    """What sync_keys keeps of a row: its values as text (to recognise it) and in store form (its base)."""
    return json.dumps({"text": text_values, "base": base_values}, ensure_ascii=False, default=str)


# ---- approval (审核) ------------------------------------------------------------------------------

def pending_customers(store, user: str) -> list[dict]:
    """Customers waiting for approval that ``user`` may see (approving needs the approve grant)."""
    return store.list("customer", where={"approval_status": "pending"}, visible_to=store.user(user))


def approve_customers(store, user: str, ids: Sequence[str] | None = None) -> tuple[list[str], list[tuple[str, str]]]:
    """Approve pending customers (all ``user`` may approve when ``ids`` is empty) in one transaction.

    Returns (approved ids, [(id, why not)]): a customer the user may not approve, or one that is
    not pending, is listed with the reason and audited as refused; the others are approved.
    """
    from . import access

    who = store.user(user)
    targets = list(ids) if ids else [c["customer_id"] for c in pending_customers(store, user)
                                     if access.check(who, "approve", c)]
    approved, refused = [], []
    with store.transaction(user, "approve") as tx:
        for cid in targets:
            try:
                with tx.conn.begin_nested():
                    tx.approve(cid)
                approved.append(cid)
            except CrmsyncError as exc:
                tx.refuse(str(exc), entity="customer", record_id=cid, field="approval_status")
                refused.append((cid, str(exc)))
    return approved, refused
