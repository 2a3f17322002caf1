"""Writing store records into a workbook's entity sheets, as the workbook's columns expect them.

A cell holds what a person would type: enumeration labels (意向客户, not ``intended``), 是/否, dates
as Excel dates, amounts as numbers.  The hidden ``_version`` column carries the version each row
was written from, so a later sync knows what the row's base was.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path

from .schema import ENTITIES, Entity, Field

VERSION_COLUMN_KEY = "_version"


@lru_cache(maxsize=1)
def _layout() -> dict:
    from .build import TEMPLATES

    return json.loads((TEMPLATES / "layout.json").read_text(encoding="utf-8"))


def cell_value(f: Field, value, enums, lang: str):
    """A stored value as the workbook cell shows it."""
    if value is None or value == "":
        return None
    if f.type == "enum" and f.enum:
        return enums.label(f.enum, value, lang)
    if f.type == "bool":
        yes, no = _layout()["bool_list"]["en" if lang == "en" else "zh"]
        return yes if value else no
    if f.type == "date" and isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return value
    if f.type == "datetime" and isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def sheet_rows(store, ent: Entity, records: list[dict], lang: str) -> list[list]:
    """The rows of an entity sheet for these records, in the sheet's column order."""
    from .build_sheets import entity_columns

    enums = store.enums()
    columns = entity_columns(ent, _layout(), lang)
    rows = []
    for rec in records:
        row = []
        for col in columns:
            if col.key in ent.keys:
                row.append(cell_value(ent.get(col.key), rec.get(col.key), enums, lang))
            elif col.key == VERSION_COLUMN_KEY:
                row.append(rec.get("version"))
            else:
                row.append(None)
        rows.append(row)
    return rows


def fill_workbook(store, path: Path, user: str = "admin", lang: str = "zh") -> dict[str, int]:
    """Write every record ``user`` may see into the entity sheets of the workbook at ``path``.

    Returns the number of rows written per entity.  Only the entity sheets' rows (and their
    tables' ranges) change; the rest of the file is copied byte for byte.
    """
    from .workbook import replace_sheet_rows

    who = store.user(user)
    written = {}
    for ent in ENTITIES.values():
        records = store.list(ent.key, visible_to=who)
        replace_sheet_rows(path, ent.label(lang), sheet_rows(store, ent, records, lang), start_row=2)
        written[ent.key] = len(records)
    return written
