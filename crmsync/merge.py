"""Merging duplicate customers, reviewed by a person, and undoing a merge.

    path = write_review(store, "查重.xlsx")          # the 查重 sheet: groups of likely duplicates
    # a person ticks 合并 (merge) per record, 保留 (keep) for the survivor, and picks the
    # winning value of each field on the group's 合并结果 row (a drop-down of the group's values)
    done = apply_review(store, "查重.xlsx", user="wang")   # [MergeOutcome(merge_id, survivor, merged)]
    unmerge(store, "M202405210001", user="wang")          # or the survivor's / a merged customer's id

A merge, in one transaction: the survivor takes the chosen values; the contacts, follow-ups,
deals and service records of the others move to it; the others are soft-deleted with the reason
“合并到 C…”; a row in the ``merges`` table keeps every touched record as it was.  Every change is an
ordinary audited store change (the audit log names the merge).  ``unmerge`` puts every record back
as it was — field values, owners, the children's customer — as new versions, so copies that
synced in between see the change; it refuses when a touched record was changed after the merge
(undoing would lose that change).  Permissions: “merge” on every customer of the group.
"""

from __future__ import annotations

import json
import types
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Column, MetaData, String, Table, Text, or_, select

from .errors import InvalidInput, NotFound, StaleVersion
from .i18n import lang, tr
from .schema import CUSTOMER, ENTITIES

__all__ = ["MergeOutcome", "apply_review", "merge_customers", "merged_into", "merges_table",
           "review_groups", "unmerge", "write_review"]

_meta = MetaData()
#: One row per merge: what it changed, so that unmerge can put it back.  Created by migration 3.
merges_table = Table(
    "merges", _meta,
    Column("merge_id", String(32), primary_key=True),
    Column("survivor_id", String(32), nullable=False, index=True),
    Column("merged_ids", Text, nullable=False),  # JSON list
    Column("at", String(19), nullable=False),
    Column("user", String(80)),
    Column("snapshot", Text, nullable=False),  # JSON: records before, versions after
    Column("undone_at", String(19)),
    Column("undone_by", String(80)),
)

#: The entities whose records belong to a customer (they move to the survivor).
CHILDREN = tuple(e for e in ENTITIES.values() if e.key != "customer"
                 and any(f.ref == "customer" and f.key == "customer_id" for f in e.fields))
#: The customer fields a merge chooses values for (everything a person types).
MERGE_FIELDS = tuple(f for f in CUSTOMER.fields if not f.system)


@dataclass
class MergeOutcome:
    merge_id: str
    survivor: str
    merged: list[str]
    moved: int  # child records moved to the survivor


def merged_into(store, customer_id: str) -> str | None:
    """The survivor a customer was merged into (by a merge not undone), or None."""
    with store.engine.connect() as conn:
        for survivor, merged in conn.execute(select(merges_table.c.survivor_id, merges_table.c.merged_ids)
                                             .where(merges_table.c.undone_at.is_(None))):
            if customer_id in json.loads(merged):
                return survivor
    return None


# ---- choosing the survivor and its values ------------------------------------------------------

def _completeness(rec: dict) -> int:
    return sum(1 for f in MERGE_FIELDS if rec.get(f.key) not in (None, ""))


def rank(records: list[dict]) -> list[dict]:
    """Records best first: the most complete, then the most recently updated, then the oldest id."""
    by_id = sorted(records, key=lambda r: r["customer_id"])
    by_recent = sorted(by_id, key=lambda r: r.get("updated_at") or "", reverse=True)
    return sorted(by_recent, key=_completeness, reverse=True)


def default_values(records: list[dict]) -> dict:
    """The merged record by default: each field from the best-ranked record that has a value."""
    ranked = rank(records)
    out = {}
    for f in MERGE_FIELDS:
        out[f.key] = next((r.get(f.key) for r in ranked if r.get(f.key) not in (None, "")), None)
    return out


# ---- merging ------------------------------------------------------------------------------------

def merge_customers(tx, survivor_id: str, merged_ids: list[str], values: dict | None = None,
                    *, reason: str | None = None, expect_versions: dict | None = None) -> MergeOutcome:
    """Merge customers inside a store transaction (see the module docstring).

    :param values: field → value the survivor keeps (default: default_values of the group).
    :param expect_versions: customer id → version the reviewer saw; StaleVersion if one moved.
    Raises NotFound, InvalidInput (fewer than two customers, one deleted), PermissionDenied,
    StaleVersion.
    """
    merged_ids = [m for m in dict.fromkeys(merged_ids) if m != survivor_id]
    if not merged_ids:
        raise InvalidInput(tr("合并至少需要两个客户", "a merge needs at least two customers"))
    records = {cid: tx.require_record("customer", cid) for cid in [survivor_id, *merged_ids]}
    for cid, rec in records.items():
        if rec.get("deleted"):
            raise InvalidInput(tr(f"客户 {cid} 已删除或已被合并，不能再合并", f"customer {cid} is deleted or already merged"))
        if expect_versions and cid in expect_versions and int(expect_versions[cid]) != rec["version"]:
            raise StaleVersion(tr(f"客户 {cid} 在生成查重表之后被修改过（版本 {expect_versions[cid]} → {rec['version']}），请重新查重",
                                  f"customer {cid} changed after the review was written (version {expect_versions[cid]} → {rec['version']}); run dedupe again"))
        tx.require("merge", rec)
    merge_id = tx.allocate_ids(types.SimpleNamespace(id_prefix="M"))[0]
    reason = reason or tr(f"合并重复客户（{merge_id}）", f"merge of duplicate customers ({merge_id})")
    chosen = dict(values) if values is not None else default_values(list(records.values()))
    survivor = records[survivor_id]
    changes = {k: v for k, v in chosen.items() if k in CUSTOMER.keys and not CUSTOMER.get(k).system
               and v != survivor.get(k)}
    before = {cid: _plain(rec) for cid, rec in records.items()}
    moved = []
    for ent in CHILDREN:
        for child in _children(tx, ent, merged_ids):
            moved.append([ent.key, child[ent.id_field], child["customer_id"]])
            tx.update(ent.key, child[ent.id_field], {"customer_id": survivor_id}, reason=reason)
    after_survivor = tx.update("customer", survivor_id, changes, reason=reason) if changes else survivor
    for cid in merged_ids:
        tx.delete("customer", cid, reason=tr(f"合并到 {survivor_id}（{merge_id}）", f"merged into {survivor_id} ({merge_id})"))
    after = {cid: tx.get("customer", cid)["version"] for cid in records}
    for ent_key, child_id, _ in moved:
        after[f"{ent_key}:{child_id}"] = tx.get(ent_key, child_id)["version"]
    snapshot = {"customers": before, "children": moved, "after": after,
                "changed": sorted(changes)}
    tx.conn.execute(merges_table.insert().values(
        merge_id=merge_id, survivor_id=survivor_id, merged_ids=json.dumps(merged_ids),
        at=tx.now, user=tx.user.name, snapshot=json.dumps(snapshot, ensure_ascii=False, default=str)))
    tx.log("merge", entity="customer", record_id=survivor_id, version=after_survivor["version"],
           new={"merge_id": merge_id, "merged": merged_ids, "moved": len(moved)}, reason=reason)
    return MergeOutcome(merge_id, survivor_id, merged_ids, len(moved))


def _children(tx, ent, customer_ids: list[str]) -> list[dict]:
    from .tables import ENTITY_TABLES

    table = ENTITY_TABLES[ent.key]
    rows = tx.conn.execute(select(table.c[ent.id_field]).where(table.c.customer_id.in_(customer_ids))
                           .order_by(table.c[ent.id_field])).all()
    return [tx.get(ent.key, r[0]) for r in rows]


def _plain(rec: dict) -> dict:
    """A record as JSON keeps it (dates are already text in the store)."""
    return dict(rec)


def unmerge(store, merge_or_customer_id: str, *, user: str = "admin", source: str = "cli") -> MergeOutcome:
    """Undo a merge: every record it touched back as it was.  Accepts the merge id (M…), the
    survivor's id (its latest merge) or a merged customer's id.

    Raises NotFound (no such merge), InvalidInput (already undone), StaleVersion (a touched
    record changed after the merge), PermissionDenied.
    """
    key = str(merge_or_customer_id).strip()
    with store.transaction(user, source) as tx:
        row = _find_merge(tx.conn, key)
        snap = json.loads(row.snapshot)
        reason = tr(f"撤销合并 {row.merge_id}", f"undo merge {row.merge_id}")
        for rid, version in snap["after"].items():
            ent_key, _, rec_id = rid.rpartition(":")
            current = tx.require_record(ent_key or "customer", rec_id)
            if current["version"] != version:
                raise StaleVersion(tr(
                    f"合并 {row.merge_id} 之后 {rec_id} 又被修改过（版本 {version} → {current['version']}），无法撤销；请手工处理",
                    f"{rec_id} changed after merge {row.merge_id} (version {version} → {current['version']}); "
                    "it cannot be undone automatically"))
        merged = json.loads(row.merged_ids)
        for cid in merged:
            tx.restore("customer", cid, reason=reason)
        for ent_key, child_id, old_customer in snap["children"]:
            tx.update(ent_key, child_id, {"customer_id": old_customer}, reason=reason)
        before = snap["customers"][row.survivor_id]
        back = {k: before.get(k) for k in snap["changed"]}
        if back:
            tx.update("customer", row.survivor_id, back, reason=reason)
        for cid, rec in snap["customers"].items():  # anything else that differs now (e.g. owner)
            now = tx.get("customer", cid)
            diff = {f.key: rec.get(f.key) for f in MERGE_FIELDS if now.get(f.key) != rec.get(f.key)}
            if diff:
                tx.update("customer", cid, diff, reason=reason)
        tx.conn.execute(merges_table.update().where(merges_table.c.merge_id == row.merge_id)
                        .values(undone_at=tx.now, undone_by=tx.user.name))
        tx.log("unmerge", entity="customer", record_id=row.survivor_id,
               new={"merge_id": row.merge_id, "restored": merged}, reason=reason)
        return MergeOutcome(row.merge_id, row.survivor_id, merged, len(snap["children"]))


def _find_merge(conn, key: str):
    m = merges_table.c
    if key.startswith("M"):
        row = conn.execute(select(merges_table).where(m.merge_id == key)).first()
    else:
        rows = conn.execute(select(merges_table).where(or_(m.survivor_id == key, m.merged_ids.contains(f'"{key}"')))
                            .order_by(m.at.desc(), m.merge_id.desc())).all()
        row = next((r for r in rows if r.undone_at is None), rows[0] if rows else None)
    if row is None:
        raise NotFound(tr(f"没有找到合并记录 {key}", f"no merge found for {key}"))
    if row.undone_at is not None:
        raise InvalidInput(tr(f"合并 {row.merge_id} 已于 {row.undone_at} 撤销", f"merge {row.merge_id} was already undone at {row.undone_at}"))
    return row


# ---- the review workbook ------------------------------------------------------------------------

YES, NO = ("是", "Yes"), ("否", "No")
#: Records at least this likely to be the survivor's duplicate come pre-ticked for merging.
PRE_TICK = 0.99
RESULT = ("合并结果", "Merged result")
SHEET = ("查重", "Duplicates")


def _w(pair: tuple[str, str]) -> str:
    return pair[1] if lang() == "en" else pair[0]


def review_header() -> list[str]:
    fixed = [("组号", "Group"), ("合并", "Merge"), ("保留", "Keep"), ("客户编号", "Customer ID"),
             ("版本", "Version"), ("匹配度", "Score"), ("依据", "Evidence")]
    return [_w(x) for x in fixed] + [f.label(lang()) for f in MERGE_FIELDS]


def review_groups(store, *, probability: float = 0.9, progress=None) -> list[dict]:
    """The store's likely duplicate customers as review groups: records best first, pairs' scores."""
    from .dedupe import customer_config, find_duplicates

    records = store.list("customer")
    cfg = customer_config(probability)
    result = find_duplicates(records, cfg, progress=progress)
    best: dict[tuple, tuple] = {}
    for m in result.pairs:
        best[(m.a, m.b)] = best[(m.b, m.a)] = (m.score, m.evidence)
    groups = []
    for cluster in result.clusters:
        members = rank([records[i] for i in cluster])
        pos = {r["customer_id"]: i for i, r in zip(cluster, [records[i] for i in cluster])}
        head = pos[members[0]["customer_id"]]
        scored = []
        for r in members:
            here = pos[r["customer_id"]]
            score, evidence = best.get((head, here), (None, ""))
            scored.append((r, score, evidence))
        groups.append({"members": scored, "values": default_values(members)})
    return groups


def write_review(store, out: str | Path, *, probability: float = 0.9, progress=None) -> tuple[Path, int]:
    """Write the review workbook (one 查重 sheet); return its path and the number of groups."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    groups = review_groups(store, probability=probability, progress=progress)
    out = Path(out)
    wb = Workbook()
    ws = wb.active
    ws.title = _w(SHEET)
    header = review_header()
    ws.append(header)
    for c in ws[1]:
        c.font = Font(bold=True)
    yes_no = DataValidation(type="list", formula1=f'"{_w(YES)},{_w(NO)}"', allow_blank=True)
    ws.add_data_validation(yes_no)
    result_fill = PatternFill("solid", fgColor="E2EFDA")
    first_field = len(header) - len(MERGE_FIELDS) + 1
    row = 2
    for g, group in enumerate(groups, 1):
        for k, (rec, score, evidence) in enumerate(group["members"]):
            # pre-ticked only when the evidence is overwhelming; the person decides the rest
            tick = k == 0 or (score is not None and score >= PRE_TICK)
            ws.append([g, _w(YES) if tick else _w(NO), _w(YES) if k == 0 else _w(NO), rec["customer_id"], rec["version"],
                       None if score is None else round(score, 4), evidence]
                      + [_shown(store, f, rec.get(f.key)) for f in MERGE_FIELDS])
            yes_no.add(f"B{row}:C{row}")
            row += 1
        ws.append([g, _w(RESULT), None, None, None, None, None]
                  + [_shown(store, f, group["values"].get(f.key)) for f in MERGE_FIELDS])
        for j, f in enumerate(MERGE_FIELDS):
            options = sorted({str(_shown(store, f, rec.get(f.key))) for rec, _, _ in group["members"]
                              if rec.get(f.key) not in (None, "")})
            cell = ws.cell(row=row, column=first_field + j)
            cell.fill = result_fill
            text = ",".join(o.replace('"', "'") for o in options)
            if 1 < len(options) and len(text) < 250 and "," not in "".join(options):
                dv = DataValidation(type="list", formula1=f'"{text}"', allow_blank=True, showErrorMessage=False)
                ws.add_data_validation(dv)
                dv.add(cell)
        ws.cell(row=row, column=2).fill = result_fill
        row += 1
    ws.freeze_panes = "E2"
    out.parent.mkdir(parents=True, exist_ok=True)
    wb.save(out)
    return out, len(groups)


def _cell(v):
    return v if v is None or isinstance(v, (int, float, str)) else str(v)


def _shown(store, f, v):
    """A value as the review shows it: a list's label (企业客户), not its stored key."""
    if f.type == "enum" and f.enum and v not in (None, ""):
        return store.enums().label(f.enum, v, lang())
    return _cell(v)


def read_review(path: str | Path) -> list[dict]:
    """The decisions of a filled-in review workbook: per group the survivor, the merged ids, the
    chosen values and the versions seen.  Raises InvalidFile/InvalidInput naming row and column."""
    from .errors import InvalidFile
    from .readers import read_file

    sheet = read_file(path)
    grid = sheet.grid
    if not grid:
        raise InvalidFile(tr(f"“{Path(path).name}”是空的", f"'{Path(path).name}' is empty"))
    header = [str(h).strip() if h is not None else "" for h in grid[0]]
    name = Path(path).name
    if header[:4] not in (["组号", "合并", "保留", "客户编号"], ["Group", "Merge", "Keep", "Customer ID"]):
        raise InvalidInput(tr(f"“{name}”不是查重工作簿（第 1 行应为 组号、合并、保留、客户编号…）；请用 crmsync dedupe --report 生成",
                              f"'{name}' is not a review workbook (row 1 should read Group, Merge, Keep, Customer ID…); "
                              "write one with crmsync dedupe --report"))
    labels = {f.zh: f.key for f in MERGE_FIELDS} | {f.en: f.key for f in MERGE_FIELDS}
    cols = {labels[h]: j for j, h in enumerate(header) if h in labels}
    yes, result = {YES[0], YES[1], "y", "yes", "1", "true", "✓", "√"}, {RESULT[0], RESULT[1]}
    groups: dict[object, dict] = {}
    for i, r in enumerate(grid[1:], start=2):
        r = list(r) + [None] * max(len(header) - len(r), 0)
        if r[0] in (None, ""):
            continue
        g = groups.setdefault(r[0], {"row": i, "merge": [], "keep": [], "versions": {}, "values": None})
        flag = str(r[1] or "").strip()
        if flag in result:
            g["values"] = {k: r[j] for k, j in cols.items()}
            continue
        cid = str(r[3] or "").strip()
        if not cid:
            raise InvalidInput(tr(f"“{name}”第 {i} 行：缺少客户编号", f"'{name}' row {i}: customer ID is missing"))
        if flag.lower() in yes:
            g["merge"].append(cid)
            if str(r[2] or "").strip().lower() in yes:
                g["keep"].append(cid)
        if r[4] not in (None, ""):
            try:
                g["versions"][cid] = int(float(r[4]))
            except (TypeError, ValueError):
                raise InvalidInput(tr(f"“{name}”第 {i} 行：版本“{r[4]}”不是数字", f"'{name}' row {i}: version '{r[4]}' is not a number")) from None
    return [g | {"group": k} for k, g in groups.items()]


def apply_review(store, path: str | Path, *, user: str = "admin", source: str = "merge") -> tuple[list[MergeOutcome], list[str]]:
    """Apply a filled-in review workbook: one transaction per group.  Returns the merges done and
    one message per group skipped (fewer than two ticked, no survivor, or changed since)."""
    from .errors import CrmsyncError

    done, skipped = [], []
    for g in read_review(path):
        where = tr(f"第 {g['group']} 组（第 {g['row']} 行）", f"group {g['group']} (row {g['row']})")
        if len(g["merge"]) < 2:
            continue  # nothing ticked to merge: left as it is
        if len(g["keep"]) != 1:
            skipped.append(tr(f"{where}：请在“保留”列中恰好选一个客户", f"{where}: mark exactly one customer to keep"))
            continue
        survivor = g["keep"][0]
        others = [c for c in g["merge"] if c != survivor]
        try:
            with store.transaction(user, source) as tx:
                done.append(merge_customers(tx, survivor, others, _values(g["values"]),
                                            expect_versions=g["versions"]))
        except CrmsyncError as exc:
            skipped.append(f"{where}: {exc}")
    return done, skipped


def _values(values: dict | None) -> dict | None:
    if values is None:
        return None
    return {k: (None if v in ("",) else v) for k, v in values.items()}
