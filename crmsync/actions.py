"""The ribbon's actions, written once against the workbook seam (crmsync/seam.py).

Each action takes ``book`` — a ``WorkbookSeam``, a file path, or the ``xlwings.Book`` Excel hands
to RunPython — and returns the one-line message for the status bar.  The CLI calls the same
functions on files, so a button and its command always do the same thing.

Actions whose engine belongs to a later piece of work (sync, duplicates, import/export, reports,
approval) are not defined here yet: ``crmsync.macros`` then tells the user plainly that the button
is not available and runs nothing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import zip_longest
from typing import Any

from . import i18n
from .schema import ENTITIES, Entity
from .seam import MARK_PREFIX, Link, Report, SheetTable, as_seam

#: The hidden column whose text makes a row show as invalid (a conditional format in the workbook).
STATUS_COLUMN_KEY = "_status"


@lru_cache(maxsize=1)
def _layout() -> dict:
    from .build import TEMPLATES

    return json.loads((TEMPLATES / "layout.json").read_text(encoding="utf-8"))


def _extra_labels(key: str) -> set[str]:
    spec = next(s for s in _layout()["entity_extra_columns"] if s["key"] == key)
    return {spec["zh"], spec["en"]}


def report_sheet_name(key: str, sheet_names: list[str]) -> str:
    """The name of a report sheet (by layout key) in this workbook, whichever language it speaks."""
    spec = next(s for s in _layout()["sheets"] if s.get("key") == key)
    for name in (spec["zh"], spec["en"]):
        if name in sheet_names:
            return name
    return spec["en" if i18n.lang() == "en" else "zh"]


def entity_sheets(sheet_names: list[str]) -> list[tuple[Entity, str]]:
    """The entity sheets present in a workbook, as (entity, sheet name)."""
    found = []
    for ent in ENTITIES.values():
        for name in (ent.zh, ent.en):
            if name in sheet_names:
                found.append((ent, name))
                break
    return found


def field_columns(ent: Entity, table: SheetTable) -> dict[str, int]:
    """Map each field key of ``ent`` to its 0-based column in the table, by Chinese or English label."""
    by_label = {}
    for f in ent.fields:
        by_label[f.zh] = f.key
        by_label[f.en] = f.key
        by_label[f.key] = f.key
    columns = {}
    for j, label in enumerate(table.header):
        key = by_label.get(str(label).strip()) if label is not None else None
        if key is not None and key not in columns:
            columns[key] = j
    return columns


@dataclass
class SheetCheck:
    """What checking one entity sheet found."""

    sheet: str
    rows: int = 0
    invalid_rows: int = 0
    marks: dict = field(default_factory=dict)      # (row, col) → note
    problems: list = field(default_factory=list)   # (row, col, label, value, message)


def check_sheet(ent: Entity, table: SheetTable, *, enums=None, lang: str = "zh") -> SheetCheck:
    """Validate the rows of one entity sheet; return each problem with the cell it belongs to."""
    from .validate import validate_columns

    result = SheetCheck(table.sheet, rows=len(table.rows))
    columns = field_columns(ent, table)
    # The sheet's columns as they are: no per-row dicts (100,000 rows make that the slow part).
    by_position = list(zip_longest(*table.rows)) if table.rows else []
    blank = [None] * len(table.rows)
    values = {k: (by_position[j] if j < len(by_position) else blank)
              for k, j in columns.items() if not ent.get(k).system}
    _, problems = validate_columns(values, ent, enums=enums, lang=lang, row_numbers=table.row_numbers)
    bad_rows = set()
    for p in problems:
        col = columns.get(p.field)
        # A rule between fields (lost reason, dates) is shown on the field it names; a field the
        # sheet lacks is shown on the row's first column.
        col = (col + 1) if col is not None else 1
        label = ent.get(p.field).label(lang) if p.field in ent.keys else p.field
        result.problems.append((p.row, col, label, p.value, p.message))
        note = result.marks.get((p.row, col))
        result.marks[(p.row, col)] = (note + "\n" if note else MARK_PREFIX) + p.message
        bad_rows.add(p.row)
    result.invalid_rows = len(bad_rows)
    return result


@dataclass
class WorkbookCheck:
    """What 校验 found in a whole workbook."""

    rows: int = 0
    invalid_rows: int = 0
    problems: list = field(default_factory=list)  # (sheet, row, col, label, value, message)
    message: str = ""


def check_workbook(book: Any, *, enums=None, lang: str | None = None, write: bool = True) -> WorkbookCheck:
    """校验: check every entity sheet, mark invalid cells, list problems on 校验结果, report a count.

    Marks from an earlier check are cleared where the problem is fixed.  Nothing outside the
    entity sheets' marks, their hidden check-status column and the report sheet changes; with
    ``write=False`` nothing changes at all.
    """
    seam = as_seam(book)
    lang = lang or i18n.lang()
    enums = enums if enums is not None else _store_enums()
    names = seam.sheet_names()
    report = Report(header=_report_header("validation", lang), rows=[])
    outcome = WorkbookCheck()
    status_labels = _extra_labels(STATUS_COLUMN_KEY)
    for ent, sheet in entity_sheets(names):
        seam.status(_t(lang, f"正在校验 {sheet}…", f"Checking {sheet}…"))
        table = seam.read_table(sheet)
        found = check_sheet(ent, table, enums=enums, lang=lang)
        if write:
            before = seam.marked_cells(sheet)
            seam.mark_cells(sheet, found.marks, clear=[c for c in before if c not in found.marks])
            _write_row_status(seam, table, found, status_labels, lang)
        for row, col, label, value, message in found.problems:
            report.links[(len(report.rows), 2)] = Link(sheet, row, col)
            report.rows.append([sheet, row, label, _shown(value), message, _t(lang, "错误", "Error")])
            outcome.problems.append((sheet, row, col, label, value, message))
        outcome.invalid_rows += found.invalid_rows
        outcome.rows += found.rows
    if outcome.problems:
        outcome.message = _t(
            lang, f"校验完成：{outcome.rows} 行中 {outcome.invalid_rows} 行有问题，共 {len(outcome.problems)} 处，见“校验结果”",
            f"Checked {outcome.rows} rows: {len(outcome.problems)} problems in {outcome.invalid_rows} rows; "
            "see the Validation sheet")
    else:
        outcome.message = _t(lang, f"校验通过：{outcome.rows} 行没有发现问题", f"All {outcome.rows} rows are valid")
    if write:
        seam.replace_report(report_sheet_name("validation", names), report)
        seam.save()
    seam.status(outcome.message)
    return outcome


def validate_workbook(book: Any, *, enums=None, lang: str | None = None) -> str:
    """The 校验 button: check_workbook on the calling workbook; return the status-bar message."""
    return check_workbook(book, enums=enums, lang=lang).message


def _write_row_status(seam, table: SheetTable, found: SheetCheck, labels: set[str], lang: str) -> None:
    """Set the hidden check-status column: text on invalid rows (they show red), empty on valid ones."""
    col = next((j + 1 for j, h in enumerate(table.header) if h in labels), None)
    if col is None:
        return
    counts: dict[int, int] = defaultdict(int)
    for row, *_ in found.problems:
        counts[row] += 1
    cells = {}
    for row_number, row in zip(table.row_numbers, table.rows):
        old = row[col - 1] if col - 1 < len(row) else None
        new = _t(lang, f"{counts[row_number]} 个问题", f"{counts[row_number]} problems") if counts.get(row_number) else None
        if (old or None) != new:
            cells[(row_number, col)] = new
    if cells:
        seam.write_cells(table.sheet, cells)


def _t(lang: str, zh: str, en: str) -> str:
    return en if lang == "en" else zh


def _report_header(key: str, lang: str) -> list[str]:
    from .build_sheets import report_columns

    return [c.label for c in report_columns(key, _layout(), lang)]


def _shown(value: Any) -> Any:
    """A value as the report shows it: as typed, but never an object Excel cannot hold."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _store_enums():
    """The store's current enumerations when a store is configured, else the defaults."""
    import os

    location = os.environ.get("CRMSYNC_STORE")
    if not location:
        return None
    try:
        from .store import Store

        with Store(location) as store:
            return store.enums()
    except Exception:  # no store yet or unreachable: check against the built-in lists
        return None


# ---- sync and approval (crmsync/sync_copy.py, crmsync/sync_apply.py) -----------------------------

def _sync_context(book: Any, seam, store: str | None, user: str | None) -> tuple[str, str]:
    """Where the store is and who acts: given, else the workbook's xlwings.conf / the environment.

    The user never comes from the workbook (a file cannot vouch for who opened it): it is the
    caller's or ``CRMSYNC_USER`` in the environment of the person's own account.
    """
    import os

    from .errors import InvalidInput
    from .lookup import settings

    location = store or _conf_store(book, seam) or settings().store or os.environ.get("CRMSYNC_STORE")
    who = user or os.environ.get("CRMSYNC_USER")
    if not location:
        raise InvalidInput(i18n.tr("未配置中心库：请在 xlwings.conf 中填写 CRMSYNC_STORE",
                                   "no store configured: fill in CRMSYNC_STORE on the xlwings.conf sheet"))
    if not who:
        raise InvalidInput(i18n.tr("未设置同步用户：请在本机环境变量中设置 CRMSYNC_USER",
                                   "no user for sync: set CRMSYNC_USER in this account's environment"))
    return location, who


def _conf_store(book: Any, seam) -> str | None:
    """CRMSYNC_STORE from the workbook's own xlwings.conf sheet (keys in A, values in B, from A1);
    a relative path is taken from the workbook's folder."""
    import os
    from pathlib import Path

    if "xlwings.conf" not in seam.sheet_names():
        return None
    try:
        table = seam.read_table("xlwings.conf")
    except Exception:  # an odd conf sheet: fall back to the other sources
        return None
    for row in [table.header, *table.rows]:
        if len(row) >= 2 and str(row[0] or "").strip().upper() == "CRMSYNC_STORE" and row[1]:
            location = os.path.expandvars(str(row[1]).strip())
            folder = getattr(seam, "path", None) or getattr(book, "fullname", None)
            if "://" not in location and folder and not Path(location).is_absolute():
                location = str(Path(folder).parent / location)
            return location
    return None


def _copy_id(book: Any, seam) -> str:
    from pathlib import Path

    path = getattr(seam, "path", None) or getattr(book, "fullname", None)
    return str(Path(path).resolve()) if path else seam.name


def sync_workbook(book: Any, *, store: str | None = None, user: str | None = None,
                  lang: str | None = None) -> str:
    """The 同步 button: sync the workbook with the store and write the outcome back into it."""
    from .errors import CrmsyncError
    from .store import Store
    from .sync_copy import sync_book

    seam = as_seam(book)
    try:
        location, who = _sync_context(book, seam, store, user)
        with Store(location, lang=lang or i18n.lang()) as s:
            return sync_book(s, seam, who, copy_id=_copy_id(book, seam), write_back=True, lang=lang).message
    except CrmsyncError as exc:
        seam.status(str(exc))
        return str(exc)
    finally:
        _close_own(book, seam)


def _close_own(book: Any, seam) -> None:
    """Close a FileBook this action opened from a path (a seam or a workbook it was given stays open)."""
    if seam is not book and hasattr(seam, "close") and (isinstance(book, str) or hasattr(book, "__fspath__")):
        seam.close()


def approve_workbook(book: Any, *, store: str | None = None, user: str | None = None,
                     lang: str | None = None) -> str:
    """The 审核 button: approve the pending new customers listed in the workbook that the user may approve."""
    from .errors import CrmsyncError
    from .store import Store
    from .sync_apply import approve_customers, pending_customers

    seam = as_seam(book)
    lang = lang or i18n.lang()
    try:
        location, who = _sync_context(book, seam, store, user)
        listed = set()
        for ent, sheet in entity_sheets(seam.sheet_names()):
            if ent.key == "customer":
                table = seam.read_table(sheet)
                col = field_columns(ent, table).get("customer_id")
                listed = {str(r[col]).strip() for r in table.rows if col is not None and r[col]}
        with Store(location, lang=lang) as s:
            ids = [c["customer_id"] for c in pending_customers(s, who) if c["customer_id"] in listed]
            if not ids:
                text = _t(lang, "没有待审核的新客户", "No new customers waiting for approval")
            else:
                approved, refused = approve_customers(s, who, ids)
                text = _t(lang, f"已审核 {len(approved)} 个新客户", f"Approved {len(approved)} new customers")
                if refused:
                    text += _t(lang, f"，{len(refused)} 个未通过：{refused[0][1]}", f"; {len(refused)} refused: {refused[0][1]}")
    except CrmsyncError as exc:
        text = str(exc)
    finally:
        _close_own(book, seam)
    seam.status(text)
    return text


# ---- 查重 (crmsync.dedupe) ---------------------------------------------------------------------

#: Notes the 查重 button writes start with this (after MARK_PREFIX), so the next run replaces
#: its own notes and leaves every other note alone.
DUPE_NOTE = ("疑似重复", "Likely duplicate")
DUPE_SHEET = ("查重", "Duplicates")


def dedupe_workbook(book: Any, *, store: str | None = None, lang: str | None = None) -> str:
    """The 查重 button: find likely duplicate customers among the customer sheet's rows, and
    between them and the store's customers when a store is configured; mark each duplicate row's
    name cell with a note naming the others, and list the pairs on a 查重 sheet (in Excel; in a
    file without that sheet the notes are the report).  Returns the status-bar message."""
    import os

    from .dedupe import customer_config, find_duplicates, find_store_matches
    from .schema import CUSTOMER

    seam = as_seam(book)
    lang = lang or i18n.lang()
    names = seam.sheet_names()
    found = [(e, s) for e, s in entity_sheets(names) if e.key == "customer"]
    if not found:
        text = _t(lang, "工作簿中没有客户工作表", "The workbook has no customer sheet")
        seam.status(text)
        return text
    sheet = found[0][1]
    seam.status(_t(lang, "正在查重…", "Looking for duplicates…"))
    table = seam.read_table(sheet)
    columns = field_columns(CUSTOMER, table)
    cfg = customer_config()
    keys = [f.key for f in cfg.fields if f.key in columns]
    rows = [{k: (r[columns[k]] if columns[k] < len(r) else None) for k in keys} for r in table.rows]
    id_col = columns.get("customer_id")
    own_ids = [str(r[id_col]).strip() if id_col is not None and id_col < len(r) and r[id_col] else ""
               for r in table.rows]
    numbers = table.row_numbers
    note_of: dict[int, list[str]] = defaultdict(list)
    report = Report(header=[_t(lang, "行", "Row"), _t(lang, "疑似重复", "Duplicate of"),
                            _t(lang, "匹配度", "Score"), _t(lang, "依据", "Evidence")], rows=[])
    name_col = columns.get("customer_name", 0) + 1
    inside = find_duplicates(rows, cfg)
    for m in inside.pairs:
        a, b = numbers[m.a], numbers[m.b]
        for x, y in ((a, b), (b, a)):
            note_of[x].append(_t(lang, f"第 {y} 行（{m.score:.2f}：{m.evidence}）", f"row {y} ({m.score:.2f}: {m.evidence})"))
        report.links[(len(report.rows), 1)] = Link(sheet, a, name_col)
        report.rows.append([a, _t(lang, f"第 {b} 行", f"row {b}"), round(m.score, 4), m.evidence])
    location = store
    if location is None:  # the workbook's xlwings.conf, else the environment
        from .lookup import settings

        location = settings().store or os.environ.get("CRMSYNC_STORE")
    in_store = 0
    if location:
        from .errors import CrmsyncError
        from .store import Store

        try:
            with Store(location, lang=lang) as s:
                matches = find_store_matches(s, rows)
        except CrmsyncError:
            matches = []
        for i, found_here in enumerate(matches):
            others = [m for m in found_here if m.a != own_ids[i]]
            for m in others:
                in_store += 1
                note_of[numbers[i]].append(f"{m.a}（{m.score:.2f}：{m.evidence}）" if lang != "en"
                                           else f"{m.a} ({m.score:.2f}: {m.evidence})")
                report.links[(len(report.rows), 1)] = Link(sheet, numbers[i], name_col)
                report.rows.append([numbers[i], m.a, round(m.score, 4), m.evidence])
    prefixes = tuple(MARK_PREFIX + p for p in DUPE_NOTE)
    before = {c: t for c, t in seam.marked_cells(sheet).items() if t.startswith(prefixes)}
    marks = {(row, name_col): f"{_t(lang, *DUPE_NOTE)}：" + "；".join(notes) for row, notes in note_of.items()}
    seam.mark_cells(sheet, marks, clear=[c for c in before if c not in marks])
    report_sheet = next((n for n in DUPE_SHEET if n in names), None)
    if report_sheet is not None or not _is_file(seam):
        seam.replace_report(report_sheet or _t(lang, *DUPE_SHEET), report)
    seam.save()
    if not note_of:
        text = _t(lang, f"查重完成：{len(rows)} 行中没有发现疑似重复", f"No likely duplicates among {len(rows)} rows")
    else:
        text = _t(lang, f"查重完成：{len(rows)} 行中 {len(inside.clusters)} 组疑似重复"
                  + (f"，{in_store} 处与中心库已有客户重复" if location else "") + "，已在客户名称上标注",
                  f"{len(inside.clusters)} groups of likely duplicates among {len(rows)} rows"
                  + (f", {in_store} matches with customers in the store" if location else "")
                  + "; marked on the customer names")
    seam.status(text)
    return text


def _is_file(seam) -> bool:
    from .book_file import FileBook

    return isinstance(seam, FileBook)


# ---- follow-ups, reminders, dashboard, export (crmsync/reports.py, dashboard.py, export.py) ------

def _report_context(book: Any, seam, store: str | None, user: str | None) -> tuple[str, str]:
    """Where the store is and whose view: as for sync, but a missing user reads as the admin —
    the same rule the worksheet functions follow (README: "Who is asking")."""
    import os

    from .errors import InvalidInput
    from .lookup import settings

    location = store or _conf_store(book, seam) or settings().store or os.environ.get("CRMSYNC_STORE")
    if not location:
        raise InvalidInput(i18n.tr("未配置中心库：请在 xlwings.conf 中填写 CRMSYNC_STORE",
                                   "no store configured: fill in CRMSYNC_STORE on the xlwings.conf sheet"))
    return location, user or os.environ.get("CRMSYNC_USER") or "admin"


def _customer_rows(seam) -> dict[str, int]:
    """customer_id → its row on the workbook's customer sheet (for links)."""
    names = seam.sheet_names()
    cust = ENTITIES["customer"]
    sheet = next((n for n in (cust.zh, cust.en) if n in names), None)
    if sheet is None:
        return {}
    table = seam.read_table(sheet)
    col = field_columns(cust, table).get("customer_id")
    if col is None:
        return {}
    return {str(r[col]): n for r, n in zip(table.rows, table.row_numbers) if col < len(r) and r[col]}


def refresh_reminders(book: Any, *, store: str | None = None, user: str | None = None,
                      lang: str | None = None) -> str:
    """刷新提醒: list the user's reminders on the 提醒 sheet, per owner, overdue first, each customer
    id linking to its row on the 客户 sheet."""
    from .reports import KIND_LABELS, reminders
    from .store import Store

    seam = as_seam(book)
    lang = lang or i18n.lang()
    location, who = _report_context(book, seam, store, user)
    with Store(location) as s:
        found = reminders(s, s.user(who))
        enums = s.enums()
    names = seam.sheet_names()
    rows_of = _customer_rows(seam)
    cust = ENTITIES["customer"]
    cust_sheet = next((n for n in (cust.zh, cust.en) if n in names), cust.label(lang))
    header = _report_header("reminders", lang) + [_t(lang, "提醒类型", "Kind"), _t(lang, "说明", "Detail")]
    report = Report(header=header, rows=[])
    for r in found:
        if r.customer_id in rows_of:
            report.links[(len(report.rows), 1)] = Link(cust_sheet, rows_of[r.customer_id], 1)
        report.rows.append([r.customer_id, r.customer_name, r.owner,
                            enums.label("priority", r.priority, lang) if r.priority else None,
                            r.when if r.kind in ("due", "overdue") else None, r.last_contact, r.days_overdue,
                            KIND_LABELS[r.kind][1 if lang == "en" else 0],
                            (r.when if r.kind == "date" else "") + ("  " if r.kind == "date" else "") + r.detail])
    seam.replace_report(report_sheet_name("reminders", names), report)
    seam.save()
    overdue = sum(1 for r in found if r.kind == "overdue")
    text = _t(lang, f"提醒已刷新：{len(found)} 条，其中已逾期 {overdue} 条", f"Reminders refreshed: {len(found)}, {overdue} overdue")
    seam.status(text)
    return text


def refresh_dashboard(book: Any, *, store: str | None = None, user: str | None = None,
                      lang: str | None = None) -> str:
    """刷新仪表板: key figures and report tables on the 仪表板 sheet; on a file, its charts too.

    Inside Excel the values are rewritten through the seam and the charts already in the workbook
    (put there by ``crmsync report --book``) follow them: the blocks keep their place and size.
    """
    from .dashboard import dashboard_layout, scope_text
    from .reports import all_reports
    from .store import Store

    seam = as_seam(book)
    lang = lang or i18n.lang()
    location, who = _report_context(book, seam, store, user)
    sheet = report_sheet_name("dashboard", seam.sheet_names())
    with Store(location) as s:
        actor = s.user(who)
        figures = all_reports(s, actor)
        lay = dashboard_layout(figures, sheet, scope=scope_text(actor))
    seam.replace_report(sheet, lay.report())
    seam.save()
    if _is_file(seam):
        from .xlsx_chart import write_charts

        write_charts(seam.path, sheet, lay.charts)
    text = _t(lang, f"仪表板已刷新：{figures.customers} 个客户，{len(lay.charts)} 个图表",
              f"Dashboard refreshed: {figures.customers} customers, {len(lay.charts)} charts")
    seam.status(text)
    return text


def new_followup(book: Any, customer_id: str | None = None, *, user: str | None = None,
                 lang: str | None = None) -> str:
    """新增跟进: a new row on the 跟进记录 sheet for the selected customer (time and user filled in),
    ready to type the content; the next sync stores it.

    The customer is ``customer_id``, else the one on the selected row of the customer sheet, when
    the seam can tell the selection (an optional ``seam.selected_cell()`` → (sheet, (row, col))).
    """
    import os

    from . import clock
    from .errors import InvalidInput

    seam = as_seam(book)
    lang = lang or i18n.lang()
    names = seam.sheet_names()
    if customer_id is None:
        selected = getattr(seam, "selected_cell", None)
        cell = selected() if callable(selected) else None
        cust = ENTITIES["customer"]
        if cell is not None and cell[0] in (cust.zh, cust.en):
            customer_id = {n: cid for cid, n in _customer_rows(seam).items()}.get(cell[1][0])
    if not customer_id:
        raise InvalidInput(_t(lang, "请先在“客户”表中选中一个客户所在的行", "select a customer's row on the Customers sheet first"))
    fu = ENTITIES["followup"]
    sheet = next((n for n in (fu.zh, fu.en) if n in names), None)
    if sheet is None:
        raise InvalidInput(_t(lang, "工作簿中没有“跟进记录”表", "the workbook has no Follow-ups sheet"))
    table = seam.read_table(sheet)
    cols = field_columns(fu, table)
    row = max(table.row_numbers, default=table.header_row) + 1
    values = {"customer_id": customer_id, "user": user or os.environ.get("CRMSYNC_USER"),
              "follow_time": clock.now().strftime("%Y-%m-%d %H:%M")}
    cells = {(row, cols[k] + 1): v for k, v in values.items() if k in cols and v}
    seam.write_cells(sheet, cells)
    seam.save()
    text = _t(lang, f"已在“{sheet}”第 {row} 行为客户 {customer_id} 新增跟进，请填写跟进内容后同步",
              f"New follow-up for {customer_id} on row {row} of {sheet}: type the content, then sync")
    seam.status(text)
    return text


def export_workbook(book: Any, *, store: str | None = None, user: str | None = None, out: str | None = None,
                    lang: str | None = None) -> str:
    """导出: the customers the user may export, to an .xlsx beside the workbook (sensitive fields
    masked by role, formula-safe, audited); return where it went."""
    from pathlib import Path

    from . import clock
    from .export import export_customers
    from .store import Store

    seam = as_seam(book)
    lang = lang or i18n.lang()
    location, who = _report_context(book, seam, store, user)
    folder = Path(getattr(seam, "path", None) or getattr(book, "fullname", None) or ".").resolve().parent
    target = Path(out) if out else folder / f"{_t(lang, '客户导出', 'customers')}-{clock.now():%Y%m%d-%H%M%S}.xlsx"
    with Store(location) as s:
        result = export_customers(s, who, target)
    text = _t(lang, f"已导出 {result.rows} 个客户到 {target.name}", f"Exported {result.rows} customers to {target.name}")
    seam.status(text)
    return text
