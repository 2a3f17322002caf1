"""One store transaction: validated, permission-checked, versioned, audited changes.

A Tx is what Store.transaction() yields.  Each method checks before it writes, so a refused or
invalid change raises before anything of it is stored; the caller's `with` block then rolls the
whole transaction back, audit entries included.
"""

from __future__ import annotations

import gc
import operator
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from itertools import repeat

import orjson
from sqlalchemy import and_, select

from . import access, audit, clock, report_tables
from .access import User
from .i18n import lang, tr
from .errors import InvalidInput, NotFound, PermissionDenied, StaleVersion
from .schema import CUSTOM_DATA_KEY, Entity
from .tables import ENTITY_TABLES, id_counters


@contextmanager
def bulk_gc():
    """Pause the cyclic garbage collector around a bulk build of many small dicts and tuples.

    They hold no reference cycles, but their sheer number triggers repeated full collections
    that cost more than the work itself (notes/performance.md: ~2× on 100k rows).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _problem_text(problems, limit: int = 5) -> str:
    text = "; ".join(p.message for p in problems[:limit])
    return text + (tr(f"（另有 {len(problems) - limit} 个问题）", f" (and {len(problems) - limit} more)") if len(problems) > limit else "")


class Tx:
    def __init__(self, store, conn, user: User, source: str):
        self.store, self.conn, self.user, self.source = store, conn, user, source
        self.entries: list[audit.Entry] = []
        self.now = clock.now_text()
        self.counts = report_tables.Pending()  # customer counters, written at commit
        self._settings: dict | None = None

    @property
    def settings(self) -> dict:
        if self._settings is None:
            self._settings = self.store.settings()
        return self._settings

    # ---- checks and logging ------------------------------------------------------------------------

    def require(self, action: str, record: Mapping | None = None) -> access.Decision:
        """Raise PermissionDenied unless the acting user may do action (on record)."""
        decision = access.check(self.user, action, record)
        if not decision:
            raise PermissionDenied(decision.reason)
        return decision

    def log(self, action: str, *, entity: str | None = None, record_id: str | None = None,
            version: int | None = None, field: str | None = None, old=None, new=None,
            reason: str | None = None) -> None:
        """Queue an audit entry; it is chained and written when the transaction commits."""
        self.entries.append(audit.entry(self.now, self.user.name, self.source, action, entity,
                                        record_id, version, field, old, new, reason))

    def refuse(self, reason: str, *, entity: str | None = None, record_id: str | None = None,
               field: str | None = None, value=None) -> None:
        """Record a refused change (it is audited even though nothing was applied)."""
        self.log(audit.REFUSED, entity=entity, record_id=record_id, field=field, new=value, reason=reason)

    # ---- ids ---------------------------------------------------------------------------------------

    def allocate_ids(self, ent: Entity, n: int = 1, day: str | None = None) -> list[str]:
        """Return n new ids for ent from the per-day counter, inside this transaction.

        The counter moves in the same transaction as the insert, so a rolled-back insert gives its
        serial back: committed ids have no gaps, and no two transactions ever get the same one.
        """
        from .store import format_id

        day = day or self.now[:10].replace("-", "")
        c = id_counters.c
        key = and_(c.prefix == ent.id_prefix, c.day == day)
        last = self.conn.execute(select(c.last_serial).where(key)).scalar()
        if last is None:
            last = 0
            self.conn.execute(id_counters.insert().values(prefix=ent.id_prefix, day=day, last_serial=n))
        else:
            self.conn.execute(id_counters.update().where(key).values(last_serial=last + n))
        return [format_id(ent.id_prefix, day, last + i) for i in range(1, n + 1)]

    # ---- records -----------------------------------------------------------------------------------

    def get(self, entity_key: str, record_id: str | None) -> dict | None:
        """The record as this transaction sees it (its own uncommitted changes included)."""
        if not record_id:
            return None
        ent = self.store.entity(entity_key)
        table = ENTITY_TABLES[ent.key]
        row = self.conn.execute(select(table).where(table.c[ent.id_field] == record_id)).mappings().first()
        return None if row is None else self.store._to_record(ent, dict(row))

    def require_record(self, entity_key: str, record_id: str) -> dict:
        rec = self.get(entity_key, record_id)
        if rec is None:
            raise NotFound(tr(f"{self.store.entity(entity_key).zh} {record_id} 不存在", f"{self.store.entity(entity_key).en} {record_id} does not exist"))
        return rec

    def _owner_record(self, ent: Entity, values: Mapping) -> Mapping:
        """The customer whose owner/team governs access to a record of ent."""
        if ent.key == "customer":
            return values
        cid = values.get("customer_id")
        cust = self.get("customer", cid)
        if cust is None or cust.get("deleted"):
            raise InvalidInput(tr(f"{ent.zh}: 客户编号 {cid or '(空)'} 不存在", f"{ent.en}: customer {cid or '(empty)'} does not exist"))
        return cust

    def _validate(self, ent: Entity, values: Mapping):
        from .validate import validate_record

        return validate_record(dict(values), ent, enums=self.store.enums(), lang=self.store.lang)

    def create(self, entity_key: str, values: Mapping, *, reason: str | None = None) -> dict:
        """Validate, check and insert a new record; return it as stored (with its new id)."""
        ent = self.store.entity(entity_key)
        given = {k: v for k, v in values.items() if k in ent.keys and not ent.get(k).system}
        for key, default in ent.defaults:
            if given.get(key) in (None, ""):
                given[key] = default
        if ent.key == "customer":
            if self.user.role == "rep" and given.get("owner") not in (None, "", self.user.name):
                raise PermissionDenied(tr(f"销售代表 {self.user.name} 不能新增归属他人（{given['owner']}）的客户", f"sales rep {self.user.name} cannot create a customer owned by {given['owner']}"))
            given.setdefault("owner", None)
            given["owner"] = given["owner"] or self.user.name
            if not given.get("team"):
                given["team"] = self._team_of(given["owner"])
            self._check_team(given["owner"], given["team"], self._team_of(given["owner"]))
        clean, problems = self._validate(ent, given)
        if problems:
            raise InvalidInput(f"{ent.label(lang())}: {_problem_text(problems)}")
        if ent.key == "customer":
            self._check_user_exists(clean.get("owner"))
        self.require("create", self._owner_record(ent, clean))
        record_id = self.allocate_ids(ent)[0]
        row = self._new_row(ent, clean, record_id)
        self._insert(ent, [row])
        record = self.store._to_record(ent, dict(row))
        self.log(audit.CREATE, entity=ent.key, record_id=record_id, version=1, field="*",
                 new=_snapshot(ent, record), reason=reason)
        return record

    def _check_team(self, owner: str, team: str | None, owners_team: str | None) -> None:
        """A new customer belongs to its owner's team; only an admin may file it elsewhere (every
        write path comes here, so no copy, file or command can place customers in another team)."""
        if team != owners_team and self.user.role != "admin":
            raise PermissionDenied(tr(f"客户的所属团队（{team or '空'}）必须是负责人 {owner} 的团队（{owners_team or '空'}）",
                                      f"a customer's team ({team or 'none'}) must be its owner {owner}'s team "
                                      f"({owners_team or 'none'})"))

    def _team_of(self, user_name: str | None) -> str | None:
        if not user_name:
            return None
        try:
            return self.store.user(user_name).team
        except NotFound:
            return None

    def _check_user_exists(self, name: str | None) -> None:
        if name:
            self.store.user(name)  # raises NotFound with the fix

    def _new_row(self, ent: Entity, clean: Mapping, record_id: str) -> dict:
        row = {k: clean.get(k) for k in ent.stored_keys}
        row[ent.id_field] = record_id
        row.update(created_at=self.now, created_by=self.user.name, updated_at=self.now,
                   updated_by=self.user.name, version=1, deleted=False)
        if ent.key == "customer":
            pending = self.settings.get("require_approval") and self.user.role == "rep"
            row["approval_status"] = "pending" if pending else "approved"
        custom = {k: clean[k] for k in ent.custom_keys if clean.get(k) is not None}
        row[CUSTOM_DATA_KEY] = _custom_json(custom) if custom else None
        return row

    def _insert(self, ent: Entity, rows: Sequence[dict]) -> None:
        from .engine import bulk_insert

        table = ENTITY_TABLES[ent.key]
        cols = [c.name for c in table.columns]
        # tuples straight to the driver: the bulk path (see notes/performance.md); COPY on PostgreSQL
        as_tuple = operator.itemgetter(*cols)  # every row holds every column (see _new_row)
        bulk_insert(self.conn, table.name, cols, [as_tuple(r) for r in rows])
        for r in rows:
            self.counts.add(ent.key, r, +1)

    def create_many(self, entity_key: str, rows: Sequence[Mapping], *, validated: bool = False,
                    extra_data: Sequence[Mapping | None] | None = None) -> list[str]:
        """Insert many new records in one statement; return their new ids in order.

        ``extra_data`` (one mapping or None per row) is kept with the record beside its custom
        fields, e.g. the columns of an imported file that matched no field (keys start with ``_``).
        It is part of the record's first version in the audit log.
        """
        if extra_data is not None and len(extra_data) != len(rows):
            raise ValueError(f"extra_data has {len(extra_data)} entries for {len(rows)} rows")
        with bulk_gc():
            return self._create_many(entity_key, rows, validated, extra_data)

    def _create_many(self, entity_key: str, rows: Sequence[Mapping], validated: bool,
                     extra_data: Sequence[Mapping | None] | None = None) -> list[str]:
        from .validate import validate_table

        ent = self.store.entity(entity_key)
        keyset = frozenset(k for k in ent.keys if not ent.get(k).system)
        if not validated:
            given = [self._given(ent, keyset, values) for values in rows]
            result = validate_table(given, ent, enums=self.store.enums(), lang=self.store.lang)
            if result.problems:
                raise InvalidInput(f"{ent.label(lang())}: {_problem_text(result.problems)}")
            rows = [{k: v for k, v in r.items() if k in keyset} for r in result.rows]
        if self.user.role != "admin":
            for values in rows:
                self.require("create", self._owner_record(ent, self._given(ent, keyset, values)))
        ids = self.allocate_ids(ent, len(rows))
        # One pass builds each stored row (a tuple in column order) and its audit entry: at 100k
        # rows every extra pass over the data shows.  A row is map(dict.get) over the columns, in
        # C, with the same system values set by position in each.
        cols = [c.name for c in ENTITY_TABLES[ent.key].columns]
        system = dict(created_at=self.now, created_by=self.user.name, updated_at=self.now,
                      updated_by=self.user.name, version=1, deleted=False)
        fixed = [(cols.index(k), v) for k, v in system.items()]
        id_at, custom_at = cols.index(ent.id_field), cols.index(CUSTOM_DATA_KEY)
        custom_keys = ent.custom_keys
        if ent.key == "customer":
            teams = {u.name: u.team for u in self.store.users()}
            pending = self.settings.get("require_approval") and self.user.role == "rep"
            approval = "pending" if pending else "approved"
        full, entries = [], self.entries
        at, user, source, ekey = self.now, self.user.name, self.source, ent.key
        for values, rid, extra in zip(rows, ids, extra_data or repeat(None)):
            r = self._given(ent, keyset, values)
            if ekey == "customer":
                owner = r["owner"]
                if owner not in teams:
                    raise NotFound(tr(f"用户 {owner} 不存在", f"user {owner} does not exist"))
                r["team"] = r.get("team") or teams[owner]
                if r["team"] != teams[owner]:
                    self._check_team(owner, r["team"], teams[owner])
                r["approval_status"] = approval
            row = list(map(r.get, cols))
            for i, v in fixed:
                row[i] = v
            row[id_at] = rid
            if custom_keys or extra:
                custom = {k: r[k] for k in custom_keys if r.get(k) is not None}
                if extra:
                    custom.update(extra)
                    r.update(extra)
                row[custom_at] = _custom_json(custom) if custom else None
            full.append(tuple(row))
            # the first version as create() keeps it: empty values left out (a fifth of the entry)
            entries.append((at, user, source, audit.CREATE, ekey, rid, 1, "*", None,
                            audit.dump_value({k: v for k, v in r.items() if v is not None}), None))
        from .engine import bulk_insert

        bulk_insert(self.conn, ENTITY_TABLES[ent.key].name, cols, full)
        self.counts.add_columns(ekey, cols, full)
        return ids

    def _given(self, ent: Entity, keyset: frozenset, values: Mapping) -> dict:
        """A new record's typed values: only user fields, defaults filled, a customer's owner set."""
        given = dict(values) if values.keys() <= keyset else {k: v for k, v in values.items() if k in keyset}
        for key, default in ent.defaults:
            if given.get(key) in (None, ""):
                given[key] = default
        if ent.key == "customer" and not given.get("owner"):
            given["owner"] = self.user.name
        return given

    def update(self, entity_key: str, record_id: str, changes: Mapping, *, reason: str | None = None,
               base_version: int | None = None) -> dict:
        """Apply field changes to a record; return the new version.

        Raises NotFound, PermissionDenied (including a core field changed without a reason),
        InvalidInput (the change would make the record invalid) or StaleVersion (the record moved
        past base_version).  An update that changes nothing returns the record untouched.
        """
        ent = self.store.entity(entity_key)
        current = self.require_record(ent.key, record_id)
        if current.get("deleted"):
            raise InvalidInput(tr(f"{ent.zh} {record_id} 已删除；先恢复 (crmsync customer restore)", f"{ent.en} {record_id} is deleted; restore it first (crmsync customer restore)"))
        if base_version is not None and current["version"] != base_version:
            raise StaleVersion(tr(f"{ent.zh} {record_id} 已被他人修改（版本 {current['version']}，你基于 {base_version}）", f"{ent.en} {record_id} was changed by someone else (version {current['version']}, yours is based on {base_version})"))
        unknown = [k for k in changes if k not in ent.keys or ent.get(k).system]
        if unknown:
            raise InvalidInput(tr(f"{ent.zh}: 不能修改字段 {', '.join(unknown)}", f"{ent.en}: cannot change {', '.join(unknown)}"))
        merged = {k: current.get(k) for k in ent.keys if not ent.get(k).system}
        merged.update(changes)
        clean, problems = self._validate(ent, merged)
        before = {(p.field, p.code) for p in self._validate(ent, {k: current.get(k) for k in merged})[1]}
        new_problems = [p for p in problems if (p.field, p.code) not in before]
        if new_problems:
            raise InvalidInput(f"{ent.label(lang())} {record_id}: {_problem_text(new_problems)}")
        diff = {k: clean.get(k) for k in changes if clean.get(k) != current.get(k)}
        if not diff:
            return current
        self.require("edit", self._owner_record(ent, current))
        if "owner" in diff:
            self.require("assign", self._owner_record(ent, current))
            self._check_user_exists(diff["owner"])
        core = [ent.get(k).label(self.store.lang) for k in diff if ent.get(k).core]
        if core and not (reason or "").strip():
            raise PermissionDenied(tr(f"修改核心字段（{', '.join(core)}）需要填写变更原因", f"changing a core field ({', '.join(core)}) needs a reason (--reason)"))
        return self._write_changes(ent, current, diff, reason)

    def _write_changes(self, ent: Entity, current: dict, diff: Mapping, reason: str | None) -> dict:
        table = ENTITY_TABLES[ent.key]
        version = current["version"] + 1
        values = {k: v for k, v in diff.items() if not ent.get(k).custom}
        custom_keys = [k for k in diff if ent.get(k).custom]
        if custom_keys:
            # custom_data also holds what is not a field (an import's unmatched columns): keep it
            custom = {k: v for k, v in current.items() if k not in stored_columns(ent)}
            custom.update({k: diff[k] for k in custom_keys})
            values[CUSTOM_DATA_KEY] = _custom_json({k: v for k, v in custom.items() if v is not None})
        values.update(version=version, updated_at=self.now, updated_by=self.user.name)
        result = self.conn.execute(table.update().where(and_(
            table.c[ent.id_field] == current[ent.id_field], table.c.version == current["version"]))
            .values(**values))
        if result.rowcount != 1:
            raise StaleVersion(tr(f"{ent.zh} {current[ent.id_field]} 刚被他人修改，请重新同步", f"{ent.en} {current[ent.id_field]} was just changed by someone else; sync again"))
        for k, v in diff.items():
            action = {"deleted": audit.DELETE if v else audit.RESTORE}.get(k, audit.UPDATE)
            self.log(action, entity=ent.key, record_id=current[ent.id_field], version=version,
                     field=k, old=current.get(k), new=v, reason=reason)
        self.track_change(ent, current, diff)
        # the next read in this transaction must see the new version
        return {**current, **diff, "version": version, "updated_at": self.now, "updated_by": self.user.name}

    def track_change(self, ent: Entity, current: Mapping, diff: Mapping) -> None:
        """Keep the report tables (crmsync/report_tables.py) in step with a written change of
        ``current`` (the record before it)."""
        self.counts.change(ent.key, current, diff)
        stage = report_tables.STAGE_FIELDS.get(ent.key)
        if stage is None:
            return
        if stage in diff and diff[stage] != current.get(stage):
            report_tables.end_stay(self.conn, ent.key, current, diff[stage], self.now)
        if "deleted" in diff and bool(diff["deleted"]) != bool(current.get("deleted")):
            report_tables.set_deleted(self.conn, ent.key, current[ent.id_field], bool(diff["deleted"]))

    def delete(self, entity_key: str, record_id: str, *, reason: str | None = None) -> dict:
        """Soft-delete a record (restorable); raises PermissionDenied for roles that may not."""
        ent = self.store.entity(entity_key)
        current = self.require_record(ent.key, record_id)
        if current.get("deleted"):
            return current
        self.require("delete", self._owner_record(ent, current))
        return self._write_changes(ent, current, {"deleted": True}, reason)

    def restore(self, entity_key: str, record_id: str, *, reason: str | None = None) -> dict:
        ent = self.store.entity(entity_key)
        current = self.require_record(ent.key, record_id)
        if not current.get("deleted"):
            return current
        self.require("restore", self._owner_record(ent, current))
        return self._write_changes(ent, current, {"deleted": False}, reason)

    def approve(self, record_id: str, *, reason: str | None = None) -> dict:
        """Approve a pending customer (审核); return it.  Raises PermissionDenied for roles that may
        not approve that customer, InvalidInput when it is not pending."""
        ent = self.store.entity("customer")
        current = self.require_record(ent.key, record_id)
        self.require("approve", current)
        if current.get("approval_status") != "pending":
            raise InvalidInput(tr(f"客户 {record_id} 不是待审核状态", f"customer {record_id} is not pending approval"))
        return self._write_changes(ent, current, {"approval_status": "approved"}, reason)


def _custom_json(custom: Mapping) -> str:
    """custom_data's JSON text: orjson (6× json.dumps on a bulk import's 100,000 rows); dates and
    other objects as their text, as the audit log keeps them."""
    return orjson.dumps(custom, default=str, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()


def stored_columns(ent: Entity) -> frozenset[str]:
    """The names of an entity's own table columns (everything else of a record is custom data)."""
    return frozenset(c.name for c in ENTITY_TABLES[ent.key].columns)


def _snapshot(ent: Entity, record: Mapping) -> dict:
    """The first version as kept in the audit log: every typed value (who and when are the entry's)."""
    return {k: v for k, v in record.items()
            if v is not None and k not in _META and k != ent.id_field}


_META = frozenset(("created_at", "created_by", "updated_at", "updated_by", "version", "deleted"))
