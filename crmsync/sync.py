"""The three-way merge of one workbook copy against the store: pure, no file or database I/O.

A sync runs align → merge → plan (DESIGN.md §4):

- **align**: each copy row is matched to a record by its id, else by its client key, else (a row
  typed where no macro ran, so it has no key) by the content and position it had when it was last
  seen (``match_keyless``);
- **triage**: a row whose digest and version still match what the copy held at its last sync is
  unchanged on both sides and costs one hash and one dict look-up; only the others are merged;
- **merge**, field by field, ``merge_field(base, local, store)``:
  local == base → take the store's value; store == base → apply the local edit;
  local == store → nothing; otherwise a conflict (the store keeps its value);
- **plan**: the edits that pass the checks (permissions, change reason for core fields, validation
  of the record as it would become) become updates; new rows become creates; rows gone from the
  copy become delete requests; everything refused says why, on its row.

``plan_entity`` returns a ``Plan``; crmsync/sync_apply.py applies it in one store transaction.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import access
from .access import User
from .i18n import tr
from .schema import Entity
from .sync_types import (Conflict, CopyRow, Create, DeleteRequest, Plan, Refusal, RowWrite, StoreView,
                         SyncPolicy, Update, digest)

__all__ = ["CopyRow", "Plan", "SyncPolicy", "StoreView", "Update", "Create", "Conflict", "Refusal",
           "DeleteRequest", "RowWrite", "digest", "merge_field", "match_keyless", "triage", "triage_columns", "align",
           "plan_entity", "DELETED_FIELD"]

#: The field name a delete-versus-edit conflict is recorded under.
DELETED_FIELD = "deleted"


# ---- align ---------------------------------------------------------------------------------------

def _similarity(a: Mapping, b: Mapping) -> float:
    keys = {k for k, v in a.items() if v not in (None, "")} | {k for k, v in b.items() if v not in (None, "")}
    if not keys:
        return 0.0
    return sum(1 for k in keys if a.get(k) == b.get(k)) / len(keys)


def match_keyless(rows: Sequence[CopyRow], remembered: Sequence[tuple], *, threshold: float = 0.5
                  ) -> dict[int, tuple[str, str, int]]:
    """Match rows without id or client key to the keyless rows this copy sent before.

    :param remembered: (client key, record id, version, digest, row number, values) of each
        keyless row remembered for this copy and entity, not held by another row any more.
    Returns Excel row → (client key, record id, version).  An identical row matches wherever it
    moved; an edited one matches when enough of its values are still equal (a row still in its
    old place needs fewer); each remembered row matches at most one row.
    """
    scored = []
    for r in rows:
        as_text = _text_values(r.values)
        for key, rid, version, dig, number, values in remembered:
            if dig == r.digest:
                score = 2.0 + (0.1 if number == r.row else 0.0)
            else:
                score = _similarity(as_text, values or {}) + (0.25 if number == r.row else 0.0)
                if score < threshold:
                    continue
            scored.append((score, -abs((number or 0) - r.row), r.row, key, rid, version))
    scored.sort(reverse=True)
    taken_rows: set[int] = set()
    taken_keys: set[str] = set()
    out = {}
    for _score, _dist, row, key, rid, version in scored:
        if row in taken_rows or key in taken_keys:
            continue
        taken_rows.add(row)
        taken_keys.add(key)
        out[row] = (key, rid, version)
    return out


def _text_values(values: Mapping) -> dict[str, str]:
    """A row's values as comparable text (what sync_keys.row_values keeps)."""
    return {k: _as_text(v) for k, v in values.items() if v not in (None, "")}


def _as_text(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


# ---- triage --------------------------------------------------------------------------------------

@dataclass
class Triage:
    unchanged: list[CopyRow] = field(default_factory=list)  # unchanged rows that were looked at closely
    unchanged_count: int = 0  # every unchanged row, most never built into a CopyRow
    merge: list[CopyRow] = field(default_factory=list)  # existing records to merge field by field
    new: list[CopyRow] = field(default_factory=list)  # rows without an id
    missing: list[str] = field(default_factory=list)  # ids the copy held at its last sync, gone now
    base_version: dict[str, int] = field(default_factory=dict)  # id → the version to merge against


def triage(rows: Sequence[CopyRow], view: StoreView, fresh: Mapping[str, str] | None = None) -> Triage:
    """triage_columns over a list of rows (what tests and small sheets have)."""
    return triage_columns([r.record_id for r in rows], [r.digest for r in rows],
                          [r.reason for r in rows], rows.__getitem__, view, fresh)


def triage_columns(ids: Sequence, digests: Sequence[str], reasons: Sequence, make_row,
                   view: StoreView, fresh: Mapping[str, str] | None = None) -> Triage:
    """Sort a copy's rows, given as columns: unchanged on both sides, to merge, new; find rows gone.

    A row is unchanged when its digest equals the one remembered for the copy (``view.known``),
    the store has not moved since (it is absent from ``view.versions``) and no change reason was
    typed: that costs one hash and two dict look-ups, and the row is never built into a CopyRow
    (``make_row(i)`` builds row i for the rest).  A row the copy never synced is compared with the
    store's current record as a cell (``fresh``).
    """
    out = Triage()
    known, versions = view.known, view.versions
    fresh = fresh or {}
    unchanged, merge, new, base_version = out.unchanged, out.merge, out.new, out.base_version
    known_get, versions_get = known.get, versions.get
    quick = 0
    for i, rid in enumerate(ids):
        if rid is None:
            new.append(make_row(i))
            continue
        k = known_get(rid)
        cur = versions_get(rid)
        if k is not None and k[1] == digests[i]:
            if cur is None and reasons[i] is None:
                quick += 1  # the common case: as the last sync left it, on both sides
                continue
            r = make_row(i)
            base_version[rid] = k[0]  # what the last sync settled is the row's base
            if cur is None:
                cur = (k[0], False)
            if cur[0] == k[0] and not cur[1] and not r.reason:
                unchanged.append(r)
            else:
                merge.append(r)
            continue
        r = make_row(i)
        if cur is None and k is not None:
            cur = (k[0], False)  # not moved since the copy's last sync
        # The base is the version this copy last synced, as the store remembers it; the hidden
        # 同步版本 cell counts only where the store has no memory of the row: a hand-edited
        # version must not turn a conflict into a silent overwrite (tests/test_roles_attack.py).
        base = k[0] if k is not None else r.version if r.version is not None else (cur[0] if cur else 0)
        base_version[rid] = base
        if cur is not None and not cur[1] and cur[0] == base and not r.reason and fresh.get(rid) == r.digest:
            unchanged.append(r)
        else:
            merge.append(r)
    out.unchanged_count = quick + len(unchanged)
    held = set(ids)
    held.discard(None)
    out.missing = sorted(known.keys() - held)
    return out



def align(held_ids: Iterable[str | None], tri: Triage, view: StoreView, policy: SyncPolicy = SyncPolicy()
          ) -> dict[int, tuple[str, str, int]]:
    """Give rows without an id the record they already became, if any; return row → (key, id, version).

    A row's client key names the record it created; a row with no key is matched to the keyless
    rows this copy sent before (match_keyless).  Matched rows move from ``tri.new`` to
    ``tri.merge`` with their base version; the rest stay new.
    """
    matched: dict[int, tuple[str, str, int]] = {}
    keyless = []
    for r in tri.new:
        hit = view.keys.get(r.client_key) if r.client_key else None
        if hit is not None:
            matched[r.row] = (r.client_key, hit[0], hit[1])
        elif not r.client_key:
            keyless.append(r)
    if keyless and view.remembered:
        held = {rid for rid in held_ids if rid} | {m[1] for m in matched.values()}
        candidates = [m for m in view.remembered if m[1] not in held]
        matched.update(match_keyless(keyless, candidates, threshold=policy.match_threshold))
    still_new = []
    for r in tri.new:
        hit = matched.get(r.row)
        if hit is None:
            still_new.append(r)
            continue
        r.client_key, r.record_id = hit[0], hit[1]
        tri.base_version[hit[1]] = hit[2]
        tri.merge.append(r)
    tri.new = still_new
    tri.missing = [rid for rid in tri.missing if rid not in {m[1] for m in matched.values()}]
    return matched


# ---- merge ---------------------------------------------------------------------------------------

def merge_field(base: Any, local: Any, store: Any) -> str:
    """DESIGN.md §4 for one field: 'take_store', 'apply_local', 'same' or 'conflict'."""
    if local == store:
        return "same"
    if local == base:
        return "take_store"
    if store == base:
        return "apply_local"
    return "conflict"


# ---- plan ----------------------------------------------------------------------------------------

@dataclass
class PlanInput:
    """Everything plan_entity needs besides the store view."""

    entity: Entity
    user: User
    enums: Any
    lang: str = "zh"
    fields: tuple[str, ...] = ()  # editable field keys the copy has columns for
    policy: SyncPolicy = SyncPolicy()
    new_key: Any = None  # () → a new client key
    duplicates: Any = None  # (values) → (existing id, why) or None; for new customers
    users: Mapping[str, User] = field(default_factory=dict)


def plan_entity(tri: Triage, view: StoreView, inp: PlanInput,
                matched: Mapping[int, tuple[str, str, int]] | None = None) -> Plan:
    """Plan the sync of one entity sheet of a copy, after triage and align (module docstring)."""
    from .validate import validate_table

    plan = Plan(inp.entity.key)
    plan.unchanged = tri.unchanged_count
    for r in tri.unchanged:
        plan.seen[r.record_id] = (r.row, r.digest)
    plan.matched = dict(matched or {})

    truly_new = [r for r in tri.new if not r.record_id]
    merge_rows = [r for r in tri.merge if r.record_id]
    local_norm = _normalise(merge_rows + truly_new, inp, validate_table)
    _plan_merges(plan, merge_rows, local_norm, tri, view, inp, validate_table)
    _plan_creates(plan, truly_new, local_norm, view, inp, validate_table)
    if inp.policy.delete_missing:
        _plan_deletes(plan, tri.missing, view, inp)
    return plan


def _normalise(rows: Sequence[CopyRow], inp: PlanInput, validate_table) -> dict[int, dict]:
    """Each row's editable values in store form (labels → keys, dates → text, …), by Excel row.

    Column-wise (validate_table checks each distinct value of a column once): cheaper than
    comparing each cell with the store's value rendered as a cell.
    """
    if not rows:
        return {}
    result = validate_table([r.values for r in rows], inp.entity, enums=inp.enums, lang=inp.lang,
                            partial=True)
    return {r.row: norm for r, norm in zip(rows, result.rows)}


def _owner_record(ent: Entity, record: Mapping, view: StoreView) -> Mapping | None:
    if ent.key == "customer":
        return record
    return view.parents.get(record.get("customer_id"))


def _plan_merges(plan: Plan, rows, local_norm, tri: Triage, view: StoreView, inp: PlanInput,
                 validate_table) -> None:
    ent, user = inp.entity, inp.user
    fields = inp.fields
    candidates = []  # (row, record id, current, changes)
    for r in rows:
        rid = r.record_id
        current = view.current.get(rid)
        if current is None:
            plan.refusals.append(Refusal(r.row, rid, ent.id_field, rid, tr(
                f"{ent.zh} {rid} 不存在：请勿手工填写编号，新记录的编号留空", f"{ent.en} {rid} does not exist: leave the id of a new row empty")))
            continue
        owner = _owner_record(ent, current, view)
        if owner is None or not _check(user, "view", owner):
            reason = access.check(user, "view", owner or {}).reason
            plan.refusals.append(Refusal(r.row, rid, None, None, tr(
                f"不能同步他人的{ent.zh} {rid}：{reason}", f"cannot sync another user's {ent.en.lower()} {rid}: {reason}")))
            continue
        plan.seen[rid] = (r.row, r.digest)
        base_version = tri.base_version.get(rid)
        base = view.base.get(rid, current) if base_version != current["version"] else current
        if r.row in plan.matched and rid in view.sent:
            # a row that has no id in the copy yet: its base is what it held when last sent, so
            # the values the store filled in (owner, defaults) flow in instead of being "cleared"
            base = view.sent[rid]
        local = local_norm[r.row]
        plan.sent[rid] = local
        write = plan.write(r.row)
        if r.row in plan.matched:
            write.record_id, write.client_key = rid, plan.matched[r.row][0]
        if current.get("deleted"):
            changed = [k for k in inp.fields if local.get(k) != base.get(k)]
            if changed and (rid, DELETED_FIELD, _json(False)) not in view.open_conflicts:
                plan.conflicts.append(Conflict(rid, r.row, DELETED_FIELD, False, False, True, base_version,
                                               current["version"], current.get("updated_by"), current.get("updated_at")))
            elif not changed:
                plan.warnings.append(Refusal(r.row, rid, None, None, tr(
                    f"{ent.zh} {rid} 已被 {current.get('updated_by')} 删除", f"{ent.en} {rid} was deleted by {current.get('updated_by')}")))
            continue
        changes, has_conflict = {}, False
        local_get, current_get = local.get, current.get
        for k in [k for k in fields if local_get(k) != current_get(k)]:  # the rest: local == store
            lv, sv, bv = local_get(k), current_get(k), base.get(k)  # merge_field, inlined
            if lv == bv:
                write.values[k] = sv
            elif sv == bv:
                changes[k] = lv
            else:
                settled = view.resolved.get((rid, k, _json(lv)), _NO)
                if settled is not _NO:
                    write.values[k] = sv  # a manager already chose for this value: the copy follows
                    continue
                has_conflict = True
                if (rid, k, _json(lv)) not in view.open_conflicts:
                    plan.conflicts.append(Conflict(rid, r.row, k, bv, lv, sv, base_version, current["version"],
                                                   current.get("updated_by"), current.get("updated_at")))
        if not has_conflict:
            write.version = current["version"]
        if changes:
            candidates.append((r, rid, current, changes, has_conflict))
    _check_updates(plan, candidates, view, inp, validate_table)


_NO = object()


def _check(user: User, action: str, owner: Mapping | None, _cache: dict = {}) -> access.Decision:
    """access.check, remembered per (user, action, owner, team): a sync asks it for every changed row."""
    key = (user, action, owner.get("owner") if owner else None, owner.get("team") if owner else None,
           tr("", "en"))
    found = _cache.get(key)
    if found is None:
        if len(_cache) > 10_000:
            _cache.clear()
        found = _cache[key] = access.check(user, action, owner)
    return found


def _json(v: Any) -> str:
    from .audit import dump_value

    return dump_value(v) or "null"


def _check_updates(plan: Plan, candidates, view: StoreView, inp: PlanInput, validate_table) -> None:
    """Turn local edits into updates, or refusals naming the reason (each row on its own)."""
    ent, user = inp.entity, inp.user
    passed = []
    for r, rid, current, changes, has_conflict in candidates:
        owner = _owner_record(ent, current, view)
        why = _permission(ent, user, owner, changes, r.reason, inp)
        if why is not None:
            field_key, text = why
            plan.refusals.append(Refusal(r.row, rid, field_key, changes.get(field_key) if field_key else None, text))
            plan.write(r.row).version = None  # the row keeps its base: the refused edit stays visible
            continue
        passed.append((r, rid, current, changes, has_conflict))
    if not passed:
        return
    keys = [f.key for f in ent.fields if not f.system]
    merged = []
    for _r, _rid, cur, ch, _c in passed:
        whole = {**cur, **ch}
        merged.append({k: whole.get(k) for k in keys})
    after_problems = validate_table(merged, ent, enums=inp.enums, lang=inp.lang).by_row()
    before_problems = {}
    if after_problems:  # problems the record already had are not this edit's fault
        flagged = sorted(after_problems)
        before = [{k: passed[i][2].get(k) for k in keys} for i in flagged]
        found = validate_table(before, ent, enums=inp.enums, lang=inp.lang).by_row()
        before_problems = {flagged[j]: ps for j, ps in found.items()}
    for i, (r, rid, current, changes, has_conflict) in enumerate(passed):
        old = {(p.field, p.code) for p in before_problems.get(i, [])}
        new = [p for p in after_problems.get(i, []) if (p.field, p.code) not in old]
        if new:
            for p in new:
                plan.refusals.append(Refusal(r.row, rid, p.field, p.value, p.message))
            plan.write(r.row).version = None
            continue
        plan.updates.append(Update(rid, r.row, current["version"], changes,
                                   (r.reason or "").strip() or None, {k: current.get(k) for k in changes}))
        w = plan.write(r.row)
        w.clear_reason = bool(r.reason)
        w.version = None if has_conflict else -1  # -1: the version the update gives (filled in on apply)


def _permission(ent: Entity, user: User, owner: Mapping | None, changes: Mapping, reason: str | None,
                inp: PlanInput) -> tuple[str | None, str] | None:
    """None when user may make these changes; else (field, why)."""
    decision = _check(user, "edit", owner)
    if not decision:
        return None, decision.reason
    if ent.key == "customer":
        for k in ("owner", "team"):
            if k in changes:
                d = access.check(user, "assign", owner)
                if not d:
                    return k, tr(f"无权变更{ent.get(k).zh}：{d.reason}", f"may not change the {ent.get(k).en.lower()}: {d.reason}")
        new_owner = changes.get("owner")
        if new_owner and inp.users and new_owner not in inp.users:
            return "owner", tr(f"用户 {new_owner} 不存在", f"user {new_owner} does not exist")
        if new_owner and inp.users and user.role == "manager" and inp.users[new_owner].team != user.team:
            return "owner", tr(f"只能把客户分配给本团队成员（{new_owner} 不在 {user.team}）",
                               f"may assign only within the team ({new_owner} is not in {user.team})")
        if "team" in changes and user.role != "admin" and changes["team"] != user.team:
            # moving a customer into another team (or none) hands it past the manager's scope
            new_team = changes["team"] or tr("无", "none")
            return "team", tr(f"只能在本团队内调整客户（{new_team} 不是 {user.team}）",
                              f"may keep customers only within the team ({new_team} is not {user.team})")
    core = [k for k in changes if ent.get(k).core]
    if core and not (reason or "").strip():
        labels = "、".join(ent.get(k).zh for k in core)
        return core[0], tr(f"修改核心字段（{labels}）需要在“变更原因”列填写原因",
                           f"changing a core field ({', '.join(ent.get(k).en for k in core)}) needs a reason in the Change reason column")
    return None


def _plan_creates(plan: Plan, rows: Sequence[CopyRow], local_norm, view: StoreView, inp: PlanInput,
                  validate_table) -> None:
    ent, user = inp.entity, inp.user
    if not rows:
        return
    keys = [f.key for f in ent.fields if not f.system]
    table = []
    for r in rows:
        values = {k: local_norm[r.row].get(k) for k in keys if k in local_norm[r.row]}
        for k, default in ent.defaults:
            if values.get(k) in (None, ""):
                values[k] = default
        if ent.key == "customer":
            values["owner"] = values.get("owner") or user.name
        table.append(values)
    checked = validate_table(table, ent, enums=inp.enums, lang=inp.lang).by_row()
    for i, (r, values) in enumerate(zip(rows, table)):
        problems = checked.get(i)
        if problems:
            for p in problems:
                plan.refusals.append(Refusal(r.row, None, p.field, p.value, p.message))
            continue
        owner = values if ent.key == "customer" else view.parents.get(values.get("customer_id"))
        if ent.key != "customer" and owner is None:
            cid = values.get("customer_id")
            plan.refusals.append(Refusal(r.row, None, "customer_id", cid, tr(
                f"客户编号 {cid} 不存在（新客户请先在“客户”表填写，这里填它的编号或名称）",
                f"customer {cid} does not exist (add a new customer on the Customers sheet and give its id or name here)")))
            continue
        if ent.key == "customer" and values["owner"] != user.name and user.role == "rep":
            plan.refusals.append(Refusal(r.row, None, "owner", values["owner"], tr(
                f"销售代表 {user.name} 不能新增归属他人（{values['owner']}）的客户",
                f"sales rep {user.name} cannot add a customer owned by {values['owner']}")))
            continue
        if ent.key == "customer" and inp.users and values["owner"] not in inp.users:
            plan.refusals.append(Refusal(r.row, None, "owner", values["owner"], tr(
                f"用户 {values['owner']} 不存在", f"user {values['owner']} does not exist")))
            continue
        if ent.key == "customer" and inp.users:
            owner_team = inp.users[values["owner"]].team
            if values.get("team") and values["team"] != owner_team and user.role != "admin":
                # a typed 所属团队 must not put the customer in another team's view
                plan.refusals.append(Refusal(r.row, None, "team", values["team"], tr(
                    f"所属团队 {values['team']} 与负责人 {values['owner']} 的团队（{owner_team or '无'}）不符",
                    f"team {values['team']} is not owner {values['owner']}'s team ({owner_team or 'none'})")))
                continue
            values["team"] = values.get("team") or owner_team
        decision = access.check(user, "create", owner)
        if not decision:
            plan.refusals.append(Refusal(r.row, None, None, None, decision.reason))
            continue
        if ent.key == "customer" and inp.duplicates is not None:
            dup = inp.duplicates(values)
            if dup is not None:
                existing, why, hard = dup
                target = plan.refusals if hard else plan.warnings
                target.append(Refusal(r.row, existing, why, values.get(why), tr(
                    f"与已有客户 {existing} 重复（{ent.get(why).zh}相同）",
                    f"duplicates existing customer {existing} (same {ent.get(why).en.lower()})")))
                if hard:
                    continue
        key = r.client_key or inp.new_key()
        plan.creates.append(Create(r.row, key, values, (r.reason or "").strip() or None,
                                   keyless=not r.client_key, row_values=_text_values(r.values),
                                   base_values=dict(local_norm[r.row])))
        w = plan.write(r.row)
        w.client_key = key
        w.clear_reason = bool(r.reason)


def _plan_deletes(plan: Plan, missing: Sequence[str], view: StoreView, inp: PlanInput) -> None:
    ent, user = inp.entity, inp.user
    for rid in missing:
        cur = view.versions.get(rid)
        if cur is None and rid in view.known:
            cur = (view.known[rid][0], False)  # not moved since the copy's last sync
        if cur is None or cur[1]:
            continue  # gone or already deleted in the store: nothing to ask
        current = view.current.get(rid)
        owner = _owner_record(ent, current, view) if current else None
        decision = access.check(user, "delete", owner)
        if not decision:
            plan.refusals.append(Refusal(None, rid, None, None, tr(
                f"删除{ent.zh} {rid} 被拒绝：{decision.reason}", f"deleting {ent.en.lower()} {rid} refused: {decision.reason}")))
            continue
        known_version = view.known[rid][0]
        if cur[0] != known_version:
            plan.conflicts.append(Conflict(rid, None, DELETED_FIELD, False, True, False, known_version, cur[0],
                                           current.get("updated_by") if current else None,
                                           current.get("updated_at") if current else None))
            continue
        plan.deletes.append(DeleteRequest(rid, cur[0]))


def row_tuple_getter(columns: Sequence[int]):
    """A fast getter of a row's values at these 0-based columns, as a tuple."""
    if not columns:
        return lambda row: ()
    if len(columns) == 1:
        j = columns[0]
        return lambda row: (row[j],)
    return operator.itemgetter(*columns)
