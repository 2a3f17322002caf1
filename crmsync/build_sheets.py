"""The sheets of crm_workbook.xlsm, written with openpyxl from schema.py and templates/layout.json.

This is the first step of the build (crmsync/build.py): it returns an openpyxl ``Workbook`` with
every sheet, column, drop-down, format, table and conditional format; the later steps add the VBA
project and the ribbon to the saved file.  Nothing here knows about VBA or zip files.

Entity sheets are derived from the schema (one per entity, one column per field, in field order),
followed by the columns ``entity_extra_columns`` of the layout: the change reason 变更原因 and the
hidden sync columns (校验状态 ``_status``, 同步版本 ``_version``, 客户端键 ``_client_key``).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from openpyxl import Workbook
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import Alignment, Font, NamedStyle, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.utils.indexed_list import IndexedList
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.table import Table, TableStyleInfo
from openpyxl.worksheet.worksheet import Worksheet

from .enums import Enums
from .schema import CHANGE_REASON_KEY, ENTITIES, Entity, Field

__all__ = ["Column", "entity_columns", "list_name", "report_columns", "sheet_names",
           "table_name", "write_sheets"]

#: Sheet names may not end in .py: xlwings treats such a sheet as embedded (paid) code.
_FORBIDDEN_SUFFIX = ".py"


@dataclass(frozen=True)
class Column:
    """One column of a sheet as the build lays it out."""

    key: str
    label: str
    type: str
    width: float
    number_format: str | None = None
    hidden: bool = False
    system: bool = False
    required: bool = False
    enum: str | None = None
    max_length: int | None = None
    prompt: str = ""
    invalid_marker: bool = False


def table_name(entity: Entity) -> str:
    """The name of the Excel table (ListObject) on an entity's sheet: ``tbl_customer``."""
    return f"tbl_{entity.key}"


def list_name(list_key: str) -> str:
    """The defined name of an enumeration's drop-down list: ``list_customer_status``."""
    return f"list_{list_key}"


def sheet_names(layout: dict, lang: str = "zh") -> dict[str, str]:
    """Map each sheet's key (entity key or layout key) to its name in ``lang``, in sheet order."""
    names: dict[str, str] = {}
    for spec in layout["sheets"]:
        if spec["kind"] == "entity":
            ent = ENTITIES[spec["entity"]]
            names[ent.key] = ent.label(lang)
        else:
            names[spec["key"]] = _text(spec, lang)
    return names


def entity_columns(entity: Entity, layout: dict, lang: str = "zh") -> list[Column]:
    """The columns of an entity's sheet: its schema fields, then the layout's extra columns."""
    cols = [_field_column(f, layout, lang) for f in entity.fields]
    for extra in layout["entity_extra_columns"]:
        cols.append(_extra_column(extra, layout, lang))
    assert any(c.key == CHANGE_REASON_KEY for c in cols), "layout lacks the change-reason column"
    labels = [c.label for c in cols]
    dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dupes:
        raise ValueError(f"{entity.key}: duplicate column labels {dupes} ({lang})")
    return cols


def report_columns(key: str, layout: dict, lang: str = "zh") -> list[Column]:
    """The header columns of a report sheet (reminders, conflicts, validation)."""
    cols = []
    for spec in layout["reports"][key]["columns"]:
        if "field" in spec:
            ent_key, field_key = spec["field"].split(".")
            cols.append(_field_column(ENTITIES[ent_key].get(field_key), layout, lang))
        else:
            cols.append(_extra_column(spec, layout, lang))
    return cols


def write_sheets(layout: dict, lang: str = "zh", *, buttons: list[tuple[str, str]] = (),
                 functions: list[tuple[str, str]] = ()) -> Workbook:
    """Return the workbook with every sheet of the layout, in the layout's order.

    :param buttons: (label, description) of each ribbon button, for the help sheet.
    :param functions: (signature, description) of each worksheet function, for the help sheet.
    """
    wb = Workbook()
    wb.properties.creator = "crmsync"
    wb.properties.title = _text(layout["title"], lang)
    _set_default_font(wb, layout, lang)
    wb.remove(wb.active)
    enums = Enums.seed()
    names = sheet_names(layout, lang)
    for name in names.values():
        if name.lower().endswith(_FORBIDDEN_SUFFIX) or len(name) > 31:
            raise ValueError(f"sheet name {name!r} is not allowed")
    st = _Styles(layout, lang)
    for spec in layout["sheets"]:
        kind = spec["kind"]
        key = spec.get("entity") or spec["key"]
        ws = wb.create_sheet(names[key])
        if kind == "entity":
            _write_entity(ws, ENTITIES[key], spec, layout, lang, st)
        elif kind == "report":
            _write_report(ws, report_columns(key, layout, lang), st)
        elif kind == "dashboard":
            _write_dashboard(ws, layout, lang, names, enums, st)
        elif kind == "help":
            _write_help(ws, layout, lang, buttons, functions, st)
        elif kind == "lists":
            _write_lists(wb, ws, layout, lang, enums, st)
        elif kind == "config":
            _write_config(ws, layout, lang, st)
        else:
            raise ValueError(f"unknown sheet kind {kind!r} in layout")
    wb.active = 0
    wb.calculation.fullCalcOnLoad = True
    return wb


# ---- columns -------------------------------------------------------------------------------------

def _text(spec: dict, lang: str) -> str:
    return spec["en"] if lang == "en" else spec["zh"]


def _display_width(text: str, wide: float = 2) -> float:
    """The width of ``text`` in Excel column units (a CJK character is about two)."""
    return sum(wide if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _width(type_: str, label: str, layout: dict, explicit: float | None = None) -> float:
    base = explicit if explicit is not None else layout["column_widths"].get(type_, 12)
    return max(base, _display_width(label) + 4)  # room for the filter button


def _field_column(f: Field, layout: dict, lang: str) -> Column:
    msgs = layout["messages"]
    prompt = ""
    if f.system:
        prompt = _text(msgs["system_prompt"], lang)
    elif f.required:
        prompt = _text(msgs["required"], lang)
    return Column(
        key=f.key, label=f.label(lang), type=f.type, width=_width(f.type, f.label(lang), layout),
        number_format=layout["number_formats"].get(f.type), system=f.system, required=f.required,
        enum=f.enum, max_length=f.max_length, prompt=prompt,
    )


def _extra_column(spec: dict, layout: dict, lang: str) -> Column:
    type_ = spec.get("type", "text")
    label = _text(spec, lang)
    return Column(
        key=spec["key"], label=label, type=type_,
        width=_width(type_, label, layout, spec.get("width")),
        number_format=layout["number_formats"].get(type_), hidden=spec.get("hidden", False),
        prompt=_text(spec["prompt"], lang) if "prompt" in spec else "",
        invalid_marker=spec.get("invalid_marker", False),
    )


# ---- styles --------------------------------------------------------------------------------------

class _Styles:
    """Fonts and fills of one build, all in the workbook's base font."""

    def __init__(self, layout: dict, lang: str):
        self.base = dict(layout["fonts"][lang])
        c = layout["colors"]
        self.c = c
        self.header_fill = _fill(c["header_fill"])
        self.system_fill = _fill(c["system_fill"])
        self.system_header_fill = _fill(c["system_header_fill"])
        self.header = self.font(bold=True, color=c["header_font"])
        self.required = self.font(bold=True, color=c["required_font"])
        self.system_header = self.font(bold=True, italic=True, color=c["system_font"])
        self.system = self.font(italic=True, color=c["system_font"])
        self.title = self.font(bold=True, size=16, color=c["title_font"])
        self.heading = self.font(bold=True, size=12, color=c["title_font"])
        self.note = self.font(italic=True, color=c["system_font"])
        self.normal = self.font()

    def font(self, size: float | None = None, **kw: Any) -> Font:
        return Font(name=self.base["name"], sz=size or self.base["size"],
                    charset=self.base.get("charset"), **kw)


def _fill(rgb: str) -> PatternFill:
    return PatternFill(fill_type="solid", start_color=rgb, end_color=rgb)


def _set_default_font(wb: Workbook, layout: dict, lang: str) -> None:
    """Make the layout's font (等线 for Chinese) the workbook's default, as Excel does per locale."""
    spec = layout["fonts"][lang]
    font = Font(name=spec["name"], sz=spec["size"], charset=spec.get("charset"), family=2)
    wb._fonts = IndexedList([font])  # font 0 is the default of every unstyled cell
    normal = NamedStyle(name="Normal", font=font, builtinId=0)
    wb._named_styles = type(wb._named_styles)([normal])


def _style_header(cell, col: Column, st: _Styles) -> None:
    cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=False)
    if col.system:
        cell.fill, cell.font = st.system_header_fill, st.system_header
    else:
        cell.fill = st.header_fill
        cell.font = st.required if col.required else st.header


def _setup_columns(ws: Worksheet, cols: list[Column], st: _Styles, *, styled: bool) -> None:
    for i, col in enumerate(cols, start=1):
        dim = ws.column_dimensions[get_column_letter(i)]
        dim.width = col.width
        dim.hidden = col.hidden
        if styled:
            # A column style: Excel gives it to every cell typed into the column later.
            if col.number_format:
                dim.number_format = col.number_format
            if col.system:
                dim.fill, dim.font = st.system_fill, st.system
        cell = ws.cell(row=1, column=i, value=col.label)
        _style_header(cell, col, st)


# ---- entity sheets -------------------------------------------------------------------------------

def _write_entity(ws: Worksheet, ent: Entity, spec: dict, layout: dict, lang: str,
                  st: _Styles) -> None:
    cols = entity_columns(ent, layout, lang)
    ws.sheet_properties.tabColor = st.c["entity_tab"]
    _setup_columns(ws, cols, st, styled=True)
    last_row = layout["last_row"]
    last_col = get_column_letter(len(cols))
    ws.freeze_panes = spec.get("freeze", "A2")
    ws.page_setup.orientation = "landscape"
    ws.print_title_rows = "1:1"

    # The table covers the header and one empty row; Excel grows it as rows are added.
    table = Table(displayName=table_name(ent), ref=f"A1:{last_col}2")
    table.tableStyleInfo = TableStyleInfo(name=layout["table_style"], showRowStripes=True,
                                          showColumnStripes=False, showFirstColumn=False,
                                          showLastColumn=False)
    ws.add_table(table)

    for i, col in enumerate(cols, start=1):
        dv = _validation(col, layout, lang)
        if dv is not None:
            letter = get_column_letter(i)
            dv.add(f"{letter}2:{letter}{last_row}")
            ws.add_data_validation(dv)

    area = f"A2:{last_col}{last_row}"
    marker = next((i for i, c in enumerate(cols, start=1) if c.invalid_marker), None)
    if marker:
        ws.conditional_formatting.add(area, FormulaRule(
            formula=[f"LEN(${get_column_letter(marker)}2)>0"], stopIfTrue=True,
            fill=_fill(st.c["invalid_fill"]), font=Font(color=st.c["invalid_font"])))
    overdue = layout.get("overdue") or {}
    if overdue.get("entity") == ent.key:
        idx = ent.keys.index(overdue["field"]) + 1
        ref = f"${get_column_letter(idx)}2"
        ws.conditional_formatting.add(area, FormulaRule(
            formula=[f"AND(ISNUMBER({ref}),{ref}<TODAY())"],
            fill=_fill(st.c["overdue_fill"]), font=Font(color=st.c["overdue_font"])))


def _validation(col: Column, layout: dict, lang: str) -> DataValidation | None:
    msgs = layout["messages"]
    title = col.label[:32]
    if col.enum or col.type == "bool":
        dv = DataValidation(type="list", formula1=f"={list_name(col.enum or 'bool')}",
                            allow_blank=True, errorStyle="stop")
        dv.errorTitle = _text(msgs["enum_error_title"], lang)
        dv.error = _text(msgs["enum_error"], lang)
        prompt = col.prompt + _text(msgs["enum_prompt"], lang) if not col.system else col.prompt
    elif col.type in ("date", "datetime") and not col.system:
        dv = DataValidation(type="date", operator="greaterThan", formula1="1", allow_blank=True,
                            errorStyle="warning")
        dv.errorTitle = _text(msgs["date_error_title"], lang)
        dv.error = _text(msgs[f"{col.type}_error"], lang)
        prompt = col.prompt
    elif col.max_length and not col.system:
        dv = DataValidation(type="textLength", operator="lessThanOrEqual",
                            formula1=str(col.max_length), allow_blank=True, errorStyle="warning")
        dv.errorTitle = _text(msgs["length_error_title"], lang)
        dv.error = _text(msgs["length_error"], lang).format(n=col.max_length)
        prompt = col.prompt
    elif col.prompt or (col.number_format == "@" and not col.hidden):
        dv = DataValidation(allow_blank=True)  # no rule: only the input message
        prompt = col.prompt or _text(msgs["text_prompt"], lang)
    else:
        return None
    dv.showErrorMessage = dv.type is not None
    if prompt:
        dv.promptTitle, dv.prompt, dv.showInputMessage = title, prompt[:255], True
    return dv


# ---- report, dashboard, help, lists, config ------------------------------------------------------

def _write_report(ws: Worksheet, cols: list[Column], st: _Styles) -> None:
    ws.sheet_properties.tabColor = st.c["report_tab"]
    _setup_columns(ws, cols, st, styled=False)
    ws.freeze_panes = "A2"


def _write_dashboard(ws: Worksheet, layout: dict, lang: str, names: dict[str, str],
                     enums: Enums, st: _Styles) -> None:
    """Native formulas over the entity sheets: counts per enumeration value, follow-ups due."""
    spec = layout["dashboard"]
    ws.sheet_properties.tabColor = st.c["report_tab"]
    ws.column_dimensions["A"].width = 22
    ws.column_dimensions["B"].width = 12
    ws.column_dimensions["C"].width = 16
    ws["A1"] = _text(spec["title"], lang)
    ws["A1"].font = st.title
    ws["A2"] = _text(spec["note"], lang)
    ws["A2"].font = st.note
    row = 4

    def column_ref(ent_key: str, field_key: str) -> str:
        ent = ENTITIES[ent_key]
        letter = get_column_letter(ent.keys.index(field_key) + 1)
        return f"{quote_sheetname(names[ent_key])}!${letter}:${letter}"

    for section in spec["sections"]:
        ent = ENTITIES[section["entity"]]
        f = ent.get(section["field"])
        rng = column_ref(ent.key, f.key)
        heads = [f.label(lang), _text(spec["count_header"], lang)]
        if "sum" in section:
            heads.append(ent.get(section["sum"]).label(lang))
        for j, text in enumerate(heads, start=1):
            cell = ws.cell(row=row, column=j, value=text)
            cell.font, cell.fill = st.header, st.header_fill
        first = row + 1
        for label in enums.labels(f.enum, lang):
            row += 1
            ws.cell(row=row, column=1, value=label)
            ws.cell(row=row, column=2, value=f"=COUNTIF({rng},A{row})")
            if "sum" in section:
                sum_rng = column_ref(ent.key, section["sum"])
                cell = ws.cell(row=row, column=3, value=f"=SUMIF({rng},A{row},{sum_rng})")
                cell.number_format = layout["number_formats"]["money"]
        row += 1
        ws.cell(row=row, column=1, value=_text(spec["total"], lang)).font = st.header
        ws.cell(row=row, column=2, value=f"=SUM(B{first}:B{row - 1})").font = st.header
        if "sum" in section:
            cell = ws.cell(row=row, column=3, value=f"=SUM(C{first}:C{row - 1})")
            cell.font, cell.number_format = st.header, layout["number_formats"]["money"]
        row += 2

    fu = spec["follow_up"]
    rng = column_ref(layout["overdue"]["entity"], layout["overdue"]["field"])
    for j, text in enumerate([_text(fu["title"], lang), _text(spec["count_header"], lang)], 1):
        cell = ws.cell(row=row, column=j, value=text)
        cell.font, cell.fill = st.header, st.header_fill
    for key, formula in (
        ("overdue", f'=COUNTIFS({rng},"<"&TODAY())'),
        ("today", f'=COUNTIFS({rng},">="&TODAY(),{rng},"<"&(TODAY()+1))'),
        ("week", f'=COUNTIFS({rng},">="&TODAY(),{rng},"<"&(TODAY()+8))'),
    ):
        row += 1
        ws.cell(row=row, column=1, value=_text(fu[key], lang))
        ws.cell(row=row, column=2, value=formula)
    _fit_page(ws)


def _write_help(ws: Worksheet, layout: dict, lang: str, buttons, functions, st: _Styles) -> None:
    spec = layout["help"]
    ws.sheet_properties.tabColor = st.c["help_tab"]
    width = 80
    ws.column_dimensions["A"].width = width
    wrap = Alignment(wrap_text=True, vertical="top")
    row = 1

    def put(text: str, font: Font) -> None:
        nonlocal row
        cell = ws.cell(row=row, column=1, value=text)
        cell.font, cell.alignment = font, wrap
        if text.startswith(("=", "+", "-", "@")):
            cell.data_type = "s"  # text, never a formula
        # Neither Excel nor LibreOffice fits row heights on open: give wrapped text its lines.
        lines = max(1, -(-_display_width(text, wide=1.75) // (width - 2)))
        ws.row_dimensions[row].height = lines * font.sz * 1.45 + 2
        row += 1

    put(_text(spec["title"], lang), st.title)
    for line in spec["intro"]:
        put(_text(line, lang), st.normal)
    for section in spec["sections"]:
        row += 1
        put(_text(section["title"], lang), st.heading)
        for line in section.get("lines", []):
            put(_text(line, lang), st.normal)
        generated = section.get("generated")
        if generated == "buttons":
            for label, tip in buttons:
                put(f"{label}：{tip}" if lang != "en" else f"{label}: {tip}", st.normal)
        elif generated == "functions":
            for signature, doc in functions:
                put(f"{signature}：{doc}" if lang != "en" else f"{signature}: {doc}", st.normal)
        elif generated == "required":
            sep = "、" if lang != "en" else ", "
            for ent in ENTITIES.values():
                req = sep.join(f.label(lang) for f in ent.fields if f.required and not f.system)
                put(f"{ent.label(lang)}：{req}" if lang != "en" else f"{ent.label(lang)}: {req}",
                    st.normal)
    _fit_page(ws)


def _write_lists(wb: Workbook, ws: Worksheet, layout: dict, lang: str, enums: Enums,
                 st: _Styles) -> None:
    """One column per enumeration (header = list key), each with a defined name for drop-downs."""
    lists = [(key, enums.labels(key, lang)) for key in enums.lists()]
    lists.append(("bool", _text(layout["bool_list"], lang)))
    for i, (key, labels) in enumerate(lists, start=1):
        letter = get_column_letter(i)
        ws.cell(row=1, column=i, value=key).font = st.header
        for r, label in enumerate(labels, start=2):
            ws.cell(row=r, column=i, value=label)
        ws.column_dimensions[letter].width = max(14, *(_display_width(x) + 2 for x in labels))
        ref = f"{quote_sheetname(ws.title)}!${letter}$2:${letter}${len(labels) + 1}"
        wb.defined_names[list_name(key)] = DefinedName(list_name(key), attr_text=ref)
    ws.sheet_state = "hidden"


def _write_config(ws: Worksheet, layout: dict, lang: str, st: _Styles) -> None:
    """xlwings' settings sheet: keys in column A, values in B, contiguous from A1."""
    for r, (key, value) in enumerate(layout["config"], start=1):
        ws.cell(row=r, column=1, value=key)
        value = value.replace("{lang}", lang)
        if value:
            ws.cell(row=r, column=2, value=value).number_format = "@"
    ws.column_dimensions["A"].width = 20
    ws.column_dimensions["B"].width = 40
    ws.sheet_state = "hidden"


def _fit_page(ws: Worksheet) -> None:
    ws.page_setup.orientation = "portrait"
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
