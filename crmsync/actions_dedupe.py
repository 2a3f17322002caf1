"""The 查重 (find duplicates) button (crmsync/dedupe.py)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from . import i18n
from .actions import _is_file, _t, entity_sheets, field_columns
from .seam import MARK_PREFIX, Link, Report, as_seam

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
