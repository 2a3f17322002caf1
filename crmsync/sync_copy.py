"""Syncing one workbook copy with the store: read it, plan and apply (sync_apply.py), write back.

    result = ingest_copy(store, Path("team/zhang.xlsm"), "zhang")          # the watcher: no write-back
    result = ingest_copy(store, path, "zhang", write_back=True)             # the CLI
    print(result.message)
    checkout(store, "zhang", Path("zhang.xlsm"))                           # a personal copy

The copy's user always comes from the caller (the watcher's folder map, the CLI's --user, the
environment of Excel's user), never from what the file says about itself.  ``copy_id`` names the
copy for exactly-once bookkeeping (default: the resolved path as text).

Write-back puts into the copy what the sync decided: new ids, versions and client keys, values
others changed, marks on refused and conflicting cells, the 冲突 sheet, and it clears 变更原因
where the change was applied.  Through FileBook it rewrites only the cells and parts it changes.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import i18n
from .errors import CrmsyncError, InvalidFile, InvalidInput
from .schema import CHANGE_REASON_KEY
from .seam import Report, SheetTable, WorkbookSeam
from .sync import DELETED_FIELD, SyncPolicy, digest, row_tuple_getter

__all__ = ["SyncResult", "ingest_copy", "sync_book", "read_copy", "checkout", "KILL_AFTER_COMMIT_ENV"]

#: Test hook: when set, the process kills itself right after the store commit, before write-back
#: (proves a crash there never duplicates anything).
KILL_AFTER_COMMIT_ENV = "CRMSYNC_TEST_KILL_AFTER_COMMIT"

VERSION_KEY, CLIENT_KEY_KEY, STATUS_KEY = "_version", "_client_key", "_status"


@dataclass
class SyncResult:
    """What one sync of one copy did; ``message`` is the one status-bar line."""

    applied: int = 0
    created: int = 0
    deleted: int = 0
    conflicts: int = 0
    refused: int = 0
    message: str = ""
    copy_id: str = ""
    unchanged: int = 0
    received: int = 0  # records the copy did not hold, added under its rows (written back only)
    details: list = field(default_factory=list)  # (sheet, row, text) of refusals and conflicts


def ingest_copy(store, path: Path, user: str, *, copy_id: str | None = None, write_back: bool = False,
                on_status: Callable[[str], None] | None = None) -> SyncResult:
    """Sync the workbook copy at ``path`` as ``user``; return what happened.

    Raises InvalidFile (corrupt, truncated, encrypted, not a workbook) before anything in the
    store changes; NotFound for an unknown user.
    """
    from .book_file import FileBook

    path = Path(path)
    copy_id = copy_id or str(path.resolve())
    book = FileBook(path, on_status=on_status, lang=i18n.lang())
    try:
        return sync_book(store, book, user, copy_id=copy_id, write_back=write_back)
    finally:
        book.close()


def sync_book(store, book: WorkbookSeam, user: str, *, copy_id: str, write_back: bool = True,
              policy: SyncPolicy = SyncPolicy(), lang: str | None = None) -> SyncResult:
    """Sync an open workbook (any seam: a file, or the workbook in Excel) as ``user``."""
    from .sync_apply import apply_copy

    lang = lang or i18n.lang()
    store.user(user)  # an unknown user: NotFound before anything is read or written
    sheets = read_copy(store, book, lang)
    book.status(i18n.tr("正在同步…", "Syncing…"))
    applied = apply_copy(store, user, copy_id, [s for s, _ in sheets], write_back=write_back, lang=lang,
                         policy=policy)
    if os.environ.get(KILL_AFTER_COMMIT_ENV):
        os.kill(os.getpid(), signal.SIGKILL)
    result = _result(applied, sheets, copy_id, lang)
    if write_back:
        try:
            result.received = _write_back(store, book, sheets, applied, lang, copy_id, user)
            if result.received:
                result.message += i18n.tr(f"，收到 {result.received} 条新记录（已加在表格末尾）",
                                          f", {result.received} new records received (added at the end)")
        except CrmsyncError as exc:
            # The store has committed; the next sync of this copy finds every new row again
            # (client keys, remembered rows), so only the file's view is behind.
            result.message += i18n.tr(f"；但未能写回文件：{exc}", f"; but the file was not updated: {exc}")
    book.status(result.message)
    return result


# ---- reading -------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _extra_labels() -> dict[str, set[str]]:
    from .copies import _layout

    return {s["key"]: {s["zh"], s["en"]} for s in _layout()["entity_extra_columns"]}


@dataclass
class _Columns:
    fields: dict[str, int]  # field key → 0-based column
    extra: dict[str, int]  # change_reason / _version / _client_key / _status → 0-based column
    width: int = 0  # the header's width
    last_row: int = 1  # the last row holding any value


def _columns(ent, table: SheetTable) -> _Columns:
    from .actions import field_columns

    fields = field_columns(ent, table)
    extra = {}
    for key, labels in _extra_labels().items():
        for j, label in enumerate(table.header):
            if label in labels:
                extra[key] = j
                break
    return _Columns(fields, extra, len(table.header), max(table.row_numbers, default=table.header_row))


def read_copy(store, book: WorkbookSeam, lang: str) -> list[tuple[Any, _Columns]]:
    """Every entity sheet of the copy as SheetRows (with its column map); InvalidFile if none."""
    from .actions import entity_sheets

    names = book.sheet_names()
    found = entity_sheets(names)
    if not found:
        raise InvalidFile(i18n.tr(f"{book.name} 不是客户管理工作簿：没有“客户”等工作表",
                                  f"{book.name} is not a CRM workbook: it has no Customers sheet"))
    out = []
    for base_ent, sheet in found:
        ent = store.entity(base_ent.key)
        out.append(sheet_rows(ent, sheet, book.read_table(sheet)))
    return out


def sheet_rows(ent, sheet: str, table: SheetTable):
    """One read entity sheet as (SheetRows, column map): its rows as columns, each with its digest.

    Column-wise: the per-row work is one tuple, one repr and one hash; the rest runs in C.
    """
    from operator import itemgetter

    from .sync_apply import SheetRows
    from .tx import bulk_gc

    cols = _columns(ent, table)
    keys = tuple(f.key for f in ent.fields if not f.system and f.key in cols.fields)
    get = row_tuple_getter([cols.fields[k] for k in keys])
    n = len(table.rows)

    def column(j):
        return list(map(itemgetter(j), table.rows)) if j is not None else [None] * n

    with bulk_gc():
        from hashlib import blake2b

        cells = list(map(get, table.rows))
        digests = [blake2b(repr(v).encode(), digest_size=16).hexdigest() for v in cells]
        ids = [v if v.__class__ is str and v[:1] > " " and v[-1:] > " " else _text(v)
               for v in column(cols.fields.get(ent.id_field))]
        versions = column(cols.extra.get(VERSION_KEY, cols.fields.get("version")))
        client_keys = column(cols.extra.get(CLIENT_KEY_KEY))
        reasons = column(cols.extra.get(CHANGE_REASON_KEY))
        numbers = table.row_numbers
        empty = digest((None,) * len(keys))  # a row with only system cells (a status note) is no row
        if empty in digests:
            keep = [i for i, d in enumerate(digests) if d != empty]
            cells, digests, ids, versions, client_keys, reasons, numbers = (
                [c[i] for i in keep] for c in (cells, digests, ids, versions, client_keys, reasons, numbers))
    rows = SheetRows(ent, sheet, keys, numbers=numbers, cells=cells, ids=ids, versions=versions,
                     keys=client_keys, reasons=reasons, digests=digests)
    return rows, cols


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    s = str(v).strip()
    return s or None


def _int(v: Any) -> int | None:
    if v.__class__ is float and v.is_integer():
        return int(v)
    try:
        return int(float(v)) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


# ---- result and write-back -----------------------------------------------------------------------

def _result(applied, sheets, copy_id: str, lang: str) -> SyncResult:
    result = SyncResult(applied=applied.applied, created=applied.created_count, deleted=applied.deleted,
                        conflicts=applied.conflicts, refused=applied.refused, copy_id=copy_id)
    for sheet, _cols in sheets:
        plan = applied.plans.get(sheet.entity.key)
        if plan is None:
            continue
        result.unchanged += plan.unchanged
        for f in plan.refusals:
            result.details.append((sheet.sheet, f.row, f.reason))
        for c in plan.conflicts:
            result.details.append((sheet.sheet, c.row, _conflict_text(sheet.entity, c, lang)))
        for w in plan.warnings:
            result.details.append((sheet.sheet, w.row, w.reason))
    zh = (f"同步完成：应用 {result.applied} 处修改，新增 {result.created} 条，删除 {result.deleted} 条，"
          f"冲突 {result.conflicts} 处，拒绝 {result.refused} 处")
    en = (f"Synced: {result.applied} changes applied, {result.created} new, {result.deleted} deleted, "
          f"{result.conflicts} conflicts, {result.refused} refused")
    if result.conflicts:
        zh += "，冲突见“冲突”表"
        en += "; see the Conflicts sheet"
    result.message = en if lang == "en" else zh
    return result


def _conflict_text(ent, c, lang: str) -> str:
    label = ent.get(c.field).label(lang) if c.field in ent.keys and c.field != DELETED_FIELD else (
        "删除" if lang != "en" else "delete")
    if lang == "en":
        return (f"conflict on {label}: yours '{_shown(c.local)}', the store's '{_shown(c.store)}' "
                f"({c.store_user or '?'}, {c.store_time or '?'}); a manager decides")
    return (f"冲突：{label} 本表为“{_shown(c.local)}”，库中为“{_shown(c.store)}”"
            f"（{c.store_user or '?'}，{c.store_time or '?'}），待经理处理")


def _shown(v: Any) -> str:
    return "" if v is None else str(v)


def _write_back(store, book: WorkbookSeam, sheets, applied, lang: str, copy_id: str, user: str) -> int:
    """Put the sync's outcome into the copy: ids, versions, keys, incoming values, marks, 冲突, and
    the records it does not hold yet; return how many of those were added."""
    from .actions import report_sheet_name
    from .copies import cell_value
    from .seam import MARK_PREFIX

    enums = store.enums()
    held: set[tuple[str, str]] = set()
    for sheet, cols in sheets:
        ent = sheet.entity
        plan = applied.plans.get(ent.key)
        if plan is None:
            continue
        cells: dict[tuple[int, int], Any] = {}
        marks: dict[tuple[int, int], str] = {}
        touched: set[int] = set()

        def col_of(key: str | None) -> int:
            if key in cols.fields:
                return cols.fields[key] + 1
            return 1

        for w in plan.writes.values():
            touched.add(w.row)
            if w.record_id and ent.id_field in cols.fields:
                cells[(w.row, cols.fields[ent.id_field] + 1)] = w.record_id
            if w.version is not None:
                if VERSION_KEY in cols.extra:
                    cells[(w.row, cols.extra[VERSION_KEY] + 1)] = w.version
                if "version" in cols.fields:
                    cells[(w.row, cols.fields["version"] + 1)] = w.version
            if w.client_key and CLIENT_KEY_KEY in cols.extra:
                cells[(w.row, cols.extra[CLIENT_KEY_KEY] + 1)] = w.client_key
            for k, v in w.values.items():
                if k in cols.fields:
                    cells[(w.row, cols.fields[k] + 1)] = cell_value(ent.get(k), v, enums, lang)
            if w.clear_reason and CHANGE_REASON_KEY in cols.extra:
                cells[(w.row, cols.extra[CHANGE_REASON_KEY] + 1)] = None
        for f in plan.refusals + plan.warnings:
            if f.row is None:
                continue
            touched.add(f.row)
            cell = (f.row, col_of(f.field))
            marks[cell] = (marks[cell] + "\n" if cell in marks else MARK_PREFIX) + f.reason
        for c in plan.conflicts:
            if c.row is None:
                continue
            touched.add(c.row)
            cell = (c.row, col_of(c.field if c.field != DELETED_FIELD else None))
            marks[cell] = (marks[cell] + "\n" if cell in marks else MARK_PREFIX) + _conflict_text(ent, c, lang)
        if STATUS_KEY in cols.extra:
            for f in plan.refusals:
                if f.row is not None:
                    cells[(f.row, cols.extra[STATUS_KEY] + 1)] = "sync refused" if lang == "en" else "同步被拒绝"
        if cells:
            book.write_cells(sheet.sheet, cells)
        before = book.marked_cells(sheet.sheet)
        clear = [c for c in before if c[0] in touched and c not in marks]
        if marks or clear:
            book.mark_cells(sheet.sheet, marks, clear=clear)
        created = applied.created.get(ent.key, {})
        matched = {number: rid for number, (_k, rid, _v) in plan.matched.items()}
        for number, rid in zip(sheet.numbers, sheet.ids):
            rid = rid or matched.get(number) or created.get(number)
            if rid:
                held.add((ent.key, rid))
    received = _append_incoming(store, book, sheets, user, held, lang)
    names = book.sheet_names()
    report_name = report_sheet_name("conflicts", names)
    if report_name in names:
        book.replace_report(report_name, _conflict_report(store, held, lang))
    book.save()
    return received


def _append_incoming(store, book: WorkbookSeam, sheets, user: str, held: set[tuple[str, str]], lang: str) -> int:
    """Add under each sheet's rows the records ``user`` may see that the copy does not hold: new
    since the checkout (a colleague's, an import's), handed to the user, or a row whose delete was
    refused.  Nothing is remembered for them until the copy is synced holding them, so a write
    that fails only means they are added again next time."""
    from .copies import cell_value

    who = store.user(user)
    enums = store.enums()
    total = 0
    for sheet, cols in sheets:
        ent = sheet.entity
        have = {rid for key, rid in held if key == ent.key}
        missing = store.ids(ent.key, visible_to=who) - have
        if not missing or ent.id_field not in cols.fields:
            continue
        rows = []
        for rec in store.list(ent.key, visible_to=who, ids=missing):
            row = [None] * cols.width
            for key, j in cols.fields.items():
                row[j] = cell_value(ent.get(key), rec.get(key), enums, lang)
            if VERSION_KEY in cols.extra:
                row[cols.extra[VERSION_KEY]] = rec.get("version")
            rows.append(row)
        book.append_rows(sheet.sheet, rows, after=cols.last_row)
        total += len(rows)
    return total


def _conflict_report(store, held: set[tuple[str, str]], lang: str) -> Report:
    """The 冲突 sheet: every open conflict on a record this copy holds."""
    from .actions import _report_header
    from .conflicts import list_conflicts
    from .schema import ENTITIES

    report = Report(header=_report_header("conflicts", lang), rows=[])
    for c in list_conflicts(store, status="open"):
        if (c.entity, c.record_id) not in held:
            continue
        ent = ENTITIES[c.entity]
        label = ent.get(c.field).label(lang) if c.field in ent.keys else c.field
        report.rows.append([ent.label(lang), c.record_id, label, _shown(c.base), _shown(c.local),
                            _shown(c.store), c.local_user, c.store_user, c.store_time,
                            ("待处理" if lang != "en" else "open") + f" #{c.id}"])
    return report


# ---- checkout ------------------------------------------------------------------------------------

def checkout(store, user: str, out: Path, *, lang: str | None = None, store_location: str | None = None
             ) -> dict[str, int]:
    """Write a personal copy at ``out`` holding exactly what ``user`` may see; return rows per entity.

    The copy is remembered under its resolved path (the copy id the next sync of it uses), so
    that sync compares each row with what checkout wrote.  Raises InvalidInput if ``out`` exists.
    """
    from .book_file import FileBook
    from .copies import fill_workbook
    from .project import place_workbook
    from .tables import sync_keys, sync_rows

    lang = lang or i18n.lang()
    out = Path(out)
    if out.exists():
        raise InvalidInput(i18n.tr(f"{out} 已存在：不会覆盖可能有人在用的文件，请换一个文件名",
                                   f"{out} exists: a file someone may be using is never overwritten; choose another name"))
    store.user(user)
    out.parent.mkdir(parents=True, exist_ok=True)
    from . import engine as dialect

    path = dialect.sqlite_path(store.url)
    place_workbook(out, store_location or (path or dialect.shared_location(store.url)), lang)
    written = fill_workbook(store, out, user, lang)
    copy_id = str(out.resolve())
    book = FileBook(out, lang=lang)
    try:
        sheets = read_copy(store, book, lang)
    finally:
        book.close()
    with store.transaction(user, f"checkout:{copy_id}") as tx:
        tx.conn.execute(sync_rows.delete().where(sync_rows.c.copy_id == copy_id))
        tx.conn.execute(sync_keys.delete().where(sync_keys.c.copy_id == copy_id))
        mark = "?" if tx.conn.dialect.paramstyle == "qmark" else "%s"
        for sheet, _cols in sheets:
            params = [(copy_id, sheet.entity.key, rid, _int(v) or 1, d)
                      for rid, v, d in zip(sheet.ids, sheet.versions, sheet.digests) if rid]
            if params:
                tx.conn.exec_driver_sql(
                    f"INSERT INTO sync_rows (copy_id, entity, record_id, version, digest) "
                    f"VALUES ({mark}, {mark}, {mark}, {mark}, {mark})", params)
        tx.log("checkout", entity="copy", record_id=out.name, new=written)
    return written
